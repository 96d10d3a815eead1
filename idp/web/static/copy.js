// Copy buttons (credentials page): each copies the text of the element its data-copy names,
// with the Clipboard API where the page is a secure context (HTTPS or loopback), else by
// selecting the text and asking the browser to copy it.  Without JS the buttons stay hidden
// and the values are plain selectable text.
(function () {
  "use strict";

  function select(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function fallback(node) {
    select(node);
    try {
      return document.execCommand("copy");
    } catch (e) {
      return false;
    }
  }

  function show(button, ok) {
    // on failure the text stays selected: the person copies it with the keyboard
    button.textContent = ok ? "Copied" : "Select and copy";
    button.dataset.state = ok ? "copied" : "failed";
    window.clearTimeout(button.copyTimer);
    button.copyTimer = window.setTimeout(function () {
      button.textContent = "Copy";
      delete button.dataset.state;
    }, 2000);
  }

  document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
    var node = document.getElementById(button.dataset.copy);
    if (!node) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = node.textContent;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(
          function () { show(button, true); },
          function () { show(button, fallback(node)); });
      } else {
        show(button, fallback(node));
      }
    });
  });
})();
