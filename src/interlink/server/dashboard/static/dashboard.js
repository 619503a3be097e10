// interlink dashboard: the one script. It asks before the buttons that stop or overwrite
// something (forms with data-confirm), and lets a job's page follow its job while it is
// queued or running (body data-live: a small JSON state polled once a second). The pages
// work without it: forms post as they are, and a job page refreshes itself (noscript).
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  var live = document.body.getAttribute("data-live");
  if (!live) {
    return;
  }
  var polls = 0;
  var MAX_POLLS = 3600; // an hour of following, then a reload shows where it stands

  function show(state) {
    var fields = document.querySelectorAll("[data-live-field]");
    Array.prototype.forEach.call(fields, function (element) {
      var name = element.getAttribute("data-live-field");
      if (state[name] !== undefined && state[name] !== null) {
        element.textContent = String(state[name]);
        if (name === "status") {
          element.className = "badge badge-" + state.status;
        }
      }
    });
    if (state.counts) {
      var counts = document.querySelectorAll("[data-live-count]");
      Array.prototype.forEach.call(counts, function (element) {
        var value = state.counts[element.getAttribute("data-live-count")];
        if (value !== undefined) {
          element.textContent = String(value);
        }
      });
    }
  }

  function poll() {
    polls += 1;
    fetch(live, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" }
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("state answered " + response.status);
        }
        return response.json();
      })
      .then(function (state) {
        show(state);
        if (state.done || polls >= MAX_POLLS) {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () {
        // Signed out, or the server went away: a reload shows which.
        window.setTimeout(function () { window.location.reload(); }, 5000);
      });
  }

  window.setTimeout(poll, 1000);
})();
