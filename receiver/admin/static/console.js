// The receiver console's only script: keeps a page's live parts fresh and asks before a
// destructive form is sent. No framework, no build step; the page works without it.
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var question = event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  // Summaries a phone shows folded, so that the list is on the first screen.
  if (window.matchMedia("(max-width: 700px)").matches) {
    document.querySelectorAll("details[data-phone-closed]").forEach(function (details) {
      details.open = false;
    });
  }

  var url = document.body.getAttribute("data-live");
  var status = document.getElementById("live-status");
  if (!url || !status) {
    return;
  }
  var PERIOD = 1500;
  var paused = false;
  var shown = {};

  function say(state, text) {
    status.hidden = false;
    status.className = "live " + state;
    status.textContent = text;
  }

  function ids(element) {
    var found = {};
    element.querySelectorAll("[data-id]").forEach(function (row) {
      found[row.getAttribute("data-id")] = true;
    });
    return found;
  }

  function openDetails(element) {
    var open = {};
    element.querySelectorAll("details[id]").forEach(function (details) {
      open[details.id] = details.open;
    });
    return open;
  }

  function swap(name, html) {
    var element = document.querySelector('[data-part="' + name + '"]');
    if (!element || shown[name] === html) {
      return;
    }
    var first = !(name in shown);
    var before = ids(element);
    var open = openDetails(element);
    element.innerHTML = html;
    shown[name] = html;
    element.querySelectorAll("details[id]").forEach(function (details) {
      if (details.id in open) {
        details.open = open[details.id];
      }
    });
    if (!first) {
      element.querySelectorAll("[data-id]").forEach(function (row) {
        if (!before[row.getAttribute("data-id")]) {
          row.classList.add("fresh");
        }
      });
    }
  }

  function schedule() {
    window.setTimeout(tick, PERIOD);
  }

  function tick() {
    if (paused || document.hidden) {
      schedule();
      return;
    }
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 401) {
          throw new Error("signed out: reload");
        }
        return response.json().then(function (data) {
          if (!response.ok) {
            throw new Error(data.error || "error " + response.status);
          }
          return data;
        });
      })
      .then(function (data) {
        var parts = data.parts || {};
        Object.keys(parts).forEach(function (name) {
          swap(name, parts[name]);
        });
        say("on", "live");
      })
      .catch(function (error) {
        say("off", error instanceof TypeError ? "offline" : error.message);
      })
      .then(schedule);
  }

  status.addEventListener("click", function () {
    paused = !paused;
    say(paused ? "paused" : "on", paused ? "paused" : "live");
  });
  say("on", "live");
  tick();
})();
