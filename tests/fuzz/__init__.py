"""Property-based fuzzing of every route of the app (see ``test_routes.py``)."""
