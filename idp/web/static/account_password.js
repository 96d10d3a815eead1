// The strength meter of the password change form: asks the server (the same rules it
// enforces) for the score and the unmet rules while the person types.
(function () {
  const form = document.getElementById("password-form");
  const input = document.getElementById("new_password");
  const meter = document.getElementById("strength");
  const list = document.getElementById("unmet");
  const words = ["too guessable", "weak", "fair", "good", "strong"];
  let timer = null;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(async function () {
      const body = new URLSearchParams({
        csrf_token: form.elements["csrf_token"].value, new_password: input.value});
      const r = await fetch(form.getAttribute("data-check"), {method: "POST", body: body});
      if (!r.ok) { return; }
      const data = await r.json();
      meter.value = data.score;
      meter.textContent = words[data.score];
      document.getElementById("strength-word").textContent = input.value ? words[data.score] : "";
      list.replaceChildren(...data.unmet.map(function (m) {
        const li = document.createElement("li"); li.textContent = m; return li; }));
    }, 150);
  });
})();
