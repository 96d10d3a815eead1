// WebAuthn ceremonies (WebAuthn Level 2 §5.1.3 create, §5.1.4 get) for the forms that carry
// their options in data-options: the credential goes back as JSON in the form's `credential`
// field (the JSON encoding of py_webauthn: base64url without padding).
"use strict";
const fromB64u = (s) => Uint8Array.from(
  atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4)),
  (c) => c.charCodeAt(0));
const toB64u = (b) => btoa(String.fromCharCode(...new Uint8Array(b)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

function ceremony(form) {
  const o = JSON.parse(form.dataset.options);
  const field = form.querySelector('input[name="credential"]');
  o.challenge = fromB64u(o.challenge);
  if (form.dataset.ceremony === "create") {
    o.user.id = fromB64u(o.user.id);
    (o.excludeCredentials || []).forEach((c) => { c.id = fromB64u(c.id); });
    return navigator.credentials.create({ publicKey: o }).then((c) => {
      field.value = JSON.stringify({
        id: c.id, rawId: toB64u(c.rawId), type: c.type,
        response: {
          clientDataJSON: toB64u(c.response.clientDataJSON),
          attestationObject: toB64u(c.response.attestationObject),
          transports: c.response.getTransports ? c.response.getTransports() : [],
        },
        clientExtensionResults: c.getClientExtensionResults(),
      });
      form.submit();
    });
  }
  (o.allowCredentials || []).forEach((c) => { c.id = fromB64u(c.id); });
  return navigator.credentials.get({ publicKey: o }).then((c) => {
    field.value = JSON.stringify({
      id: c.id, rawId: toB64u(c.rawId), type: c.type,
      response: {
        clientDataJSON: toB64u(c.response.clientDataJSON),
        authenticatorData: toB64u(c.response.authenticatorData),
        signature: toB64u(c.response.signature),
        userHandle: c.response.userHandle ? toB64u(c.response.userHandle) : null,
      },
      clientExtensionResults: c.getClientExtensionResults(),
    });
    form.submit();
  });
}

document.querySelectorAll("form[data-ceremony]").forEach((form) => {
  form.addEventListener("submit", (ev) => {
    if (form.querySelector('input[name="credential"]').value) return;
    ev.preventDefault();
    ceremony(form).catch((e) => {
      const out = document.getElementById("webauthn-error");
      if (out) out.textContent = "The passkey did not answer: " + e.name;
    });
  });
});
