"""idp.ids.uuid4 writes what ``str(uuid.uuid4())`` writes: RFC 9562 §5.4 version 4."""

from __future__ import annotations

import re
import uuid

from idp import ids


def test_uuid4_is_a_version_4_variant_10_uuid_in_the_canonical_form() -> None:
    seen = {ids.uuid4() for _ in range(20000)}
    assert len(seen) == 20000  # 122 random bits: no repeats
    for text in seen:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                            text)


def test_every_random_bit_varies() -> None:
    """Each of the 122 random bits takes both values over a few hundred IDs (a fixed bit,
    e.g. a byte left out of the hex, would show)."""
    ints = [uuid.UUID(ids.uuid4()).int for _ in range(400)]
    fixed = (0xF << 76) | (0x3 << 62)  # the version nibble and the variant bits
    ones = zeros = 0
    for value in ints:
        ones |= value
        zeros |= ~value
    assert (ones & zeros) | fixed == (1 << 128) - 1
