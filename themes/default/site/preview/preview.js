// Live reload for `pressroom preview`: poll the build number; reload (keeping the scroll
// position) when a rebuild finishes.
(function () {
  "use strict";
  var current = document.documentElement.getAttribute("data-version");
  var saved = sessionStorage.getItem("pressroom-preview-scroll");
  if (saved !== null) {
    sessionStorage.removeItem("pressroom-preview-scroll");
    window.scrollTo(0, parseInt(saved, 10) || 0);
  }
  function poll() {
    fetch("/__version", {cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (String(data.version) !== current) {
          sessionStorage.setItem("pressroom-preview-scroll", String(window.scrollY));
          window.location.reload();
        } else {
          setTimeout(poll, 1000);
        }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1000);
})();
