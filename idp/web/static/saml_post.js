// SAML HTTP-POST binding (SAML Bindings §3.5.4): submit the form carrying the message.
document.getElementById("saml-post").submit();
