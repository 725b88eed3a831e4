// The agent's page listens to its stream: each message is the board's HTML, rendered and
// escaped by the server. EventSource reconnects by itself; the first message after a
// reconnect is the agent's current calls, so nothing is missed.
"use strict";

(() => {
  const board = document.getElementById("board");
  const status = document.getElementById("status");
  const show = (text, state) => {
    status.textContent = text;
    status.className = state;
  };
  const source = new EventSource(document.body.dataset.stream);
  source.addEventListener("open", () => show("live", "live"));
  source.addEventListener("error", () => show("reconnecting…", "down"));
  source.addEventListener("board", (message) => {
    board.innerHTML = message.data;
  });
})();
