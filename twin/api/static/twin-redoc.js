// twin: load ReDoc with the API token the user pastes (MIT, part of twin).
// The token is kept in sessionStorage (this tab only; shared with /docs) and sent only to this
// origin, to fetch the API description; ReDoc itself sends no requests.
(function () {
  "use strict";
  var KEY = "twin.apiToken";
  var form = document.getElementById("twin-token");
  var input = document.getElementById("twin-token-input");
  var status = document.getElementById("twin-token-status");
  var root = document.getElementById("redoc");
  var specUrl = root.getAttribute("data-openapi-url");

  function show(text) {
    status.textContent = text;
  }

  function load(token) {
    show("Loading…");
    fetch(specUrl, { headers: { Authorization: "Bearer " + token }, cache: "no-store" })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) {
            if (response.status === 401) {
              window.sessionStorage.removeItem(KEY);
            }
            throw new Error(body.error ? body.error.message : response.statusText);
          }
          return body;
        });
      })
      .then(function (spec) {
        window.sessionStorage.setItem(KEY, token);
        show("Token accepted (kept in this browser tab only).");
        root.textContent = "";
        Redoc.init(spec, { hideDownloadButton: false, expandResponses: "200,201,202" }, root);
      })
      .catch(function (error) {
        show("Could not load the API description: " + error.message);
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var token = input.value.trim();
    input.value = "";
    if (token) {
      load(token);
    }
  });
  document.getElementById("twin-token-forget").addEventListener("click", function () {
    window.sessionStorage.removeItem(KEY);
    window.location.reload();
  });

  var saved = window.sessionStorage.getItem(KEY);
  if (saved) {
    load(saved);
  }
})();
