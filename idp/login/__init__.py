"""Browser login, Flask-free: IdP sessions, throttling, CSRF tokens and the login service."""
