// Shipyard console: confirmations for every action, and the overview kept live by
// server-sent events (the server says "changed"; the page then reloads its content).
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.dataset ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

function signedOut() {
  window.location.assign("/console/login?expired=1");
}

(function liveOverview() {
  const live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  const source = new EventSource(live.dataset.stream);
  let fetching = false;
  source.addEventListener("changed", async () => {
    if (fetching) return;
    fetching = true;
    try {
      const response = await fetch("/console", { credentials: "same-origin" });
      if (response.redirected) return signedOut();
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("live");
      if (fresh) live.innerHTML = fresh.innerHTML;
    } finally {
      fetching = false;
    }
  });
  source.addEventListener("signed-out", () => { source.close(); signedOut(); });
})();
