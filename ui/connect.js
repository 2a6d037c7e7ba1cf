// The Connect page's enhancements: the check that polls
// /connect/status until the first event arrived (every 3 s, then less
// often, up to every 30 s; it gives up after half an hour), and a copy
// button on each block. Without this script the page still works: the
// "Check again" link asks the server the same question.
"use strict";

(function () {
  var FIRST_DELAY_MS = 3000;
  var MAX_DELAY_MS = 30000;
  var GIVE_UP_AFTER_MS = 30 * 60 * 1000;

  function setUpCheck() {
    var region = document.getElementById("connect-status");
    if (!region || region.getAttribute("data-received") === "true") return;
    var url = region.getAttribute("data-status-url");
    if (!url || !window.fetch) return;
    var delay = FIRST_DELAY_MS;
    var started = Date.now();

    function show(text, received) {
      var p = document.createElement("p");
      p.className = "check " + (received ? "received" : "waiting");
      p.textContent = text;
      if (received) {
        var link = document.createElement("a");
        link.href = "/";
        link.textContent = "See the overview";
        p.appendChild(document.createTextNode(" "));
        p.appendChild(link);
      }
      region.replaceChildren(p);
    }

    function later() {
      if (Date.now() - started > GIVE_UP_AFTER_MS) {
        show("Stopped waiting after half an hour: use “Check again” below.", false);
        return;
      }
      window.setTimeout(poll, delay);
      delay = Math.min(Math.round(delay * 1.5), MAX_DELAY_MS);
    }

    function poll() {
      fetch(url, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "application/json" } })
        .then(function (response) {
          var type = response.headers.get("content-type") || "";
          if (response.status === 404) {
            show("This check has expired: reload the page to start a new one.", false);
            return null;
          }
          if (!response.ok || type.indexOf("application/json") !== 0) {
            // Signed out, or the server is restarting: try again later.
            later();
            return null;
          }
          return response.json();
        })
        .then(function (status) {
          if (!status) return;
          if (status.received) {
            region.setAttribute("data-received", "true");
            show(status.text, true);
          } else {
            later();
          }
        })
        .catch(later);
    }

    later();
  }

  function setUpCopy() {
    if (!navigator.clipboard || !navigator.clipboard.writeText) return;
    var blocks = document.querySelectorAll("figure.snippet");
    Array.prototype.forEach.call(blocks, function (figure) {
      var caption = figure.querySelector("figcaption");
      var code = figure.querySelector("pre");
      if (!caption || !code) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "copy";
      button.textContent = "Copy";
      var label = figure.getAttribute("data-name") || caption.textContent.trim();
      var say = function (text) {
        button.textContent = text;
        button.setAttribute("aria-label", text + ": " + label);
      };
      say("Copy");
      button.addEventListener("click", function () {
        navigator.clipboard.writeText(code.textContent).then(function () {
          say("Copied");
          window.setTimeout(function () { say("Copy"); }, 2000);
        }, function () {
          say("Copy failed, select the text");
        });
      });
      figure.insertBefore(button, code);
    });
  }

  function start() {
    setUpCheck();
    setUpCopy();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
