// Live updates: the stack announces changes (new log entries, new admission decisions) as
// server-sent events; the page then fetches itself again and swaps its content in place.
(function () {
  var live = document.getElementById('live');
  var refreshing = false;
  async function refresh() {
    if (refreshing) return;
    refreshing = true;
    try {
      var response = await fetch(location.href, { headers: { 'x-explorer-refresh': '1' } });
      var doc = new DOMParser().parseFromString(await response.text(), 'text/html');
      var next = doc.querySelector('main');
      if (next) document.querySelector('main').replaceWith(next);
      live.textContent = 'live, updated ' + new Date().toLocaleTimeString();
    } finally {
      refreshing = false;
    }
  }
  var events = new EventSource('/events');
  events.onmessage = refresh;
  events.onerror = function () { live.textContent = 'reconnecting'; };
})();
