// twin: load Swagger UI (/docs) or ReDoc (/redoc) with the API token the user pastes (MIT,
// part of twin). The token is kept in sessionStorage (this tab only) and sent only to this
// origin; ReDoc itself sends no requests.
(function () {
  "use strict";
  var KEY = "twin.apiToken";
  var form = document.getElementById("twin-token");
  var input = document.getElementById("twin-token-input");
  var status = document.getElementById("twin-token-status");
  var root = document.querySelector("[data-openapi-url]");
  var specUrl = root.getAttribute("data-openapi-url");
  var renderer = root.getAttribute("data-renderer");

  function show(text) {
    status.textContent = text;
  }

  function sameOrigin(url) {
    return new URL(url, window.location.href).origin === window.location.origin;
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
        if (renderer === "redoc") {
          Redoc.init(spec, { expandResponses: "200,201,202" }, root);
          return;
        }
        window.ui = SwaggerUIBundle({
          spec: spec,
          domNode: root,
          deepLinking: true,
          validatorUrl: null,
          requestInterceptor: function (request) {
            if (!request.headers.Authorization && sameOrigin(request.url)) {
              request.headers.Authorization = "Bearer " + token;
            }
            return request;
          },
          onComplete: function () {
            window.ui.preauthorizeApiKey("bearerAuth", token);
          },
        });
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
