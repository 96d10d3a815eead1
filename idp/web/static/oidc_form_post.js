// OAuth 2.0 Form Post Response Mode §2: submit the authorization response at once.
document.addEventListener("DOMContentLoaded", function () {
  document.getElementById("oidc-form-post").submit();
});
