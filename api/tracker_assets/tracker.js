// pageviews tracker: <script defer src="https://stats.example.com/tracker.js"></script>
// One view when the page loads and one per path change in a single-page app
// (pushState, replaceState, popstate; not query- or hash-only changes).
// Sends the page's origin and path only, never its query or fragment; sets no cookie
// and stores nothing in the browser. Posts to the origin this script was loaded from,
// or to the URL in its data-api attribute.
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || !/^https?:$/.test(location.protocol)) return;
  var endpoint = script.getAttribute('data-api') || new URL(script.src).origin + '/page-views/beacon';
  var lastPath = null;

  function send(referrer) {
    if (location.pathname === lastPath) return;
    lastPath = location.pathname;
    var view = {url: location.origin + location.pathname};
    if (referrer) view.referrer = referrer;
    var body = JSON.stringify(view);
    // sendBeacon sends a string as text/plain: no CORS preflight, and it survives the page closing.
    if (!(navigator.sendBeacon && navigator.sendBeacon(endpoint, body))) {
      fetch(endpoint, {method: 'POST', body: body, keepalive: true, credentials: 'omit'}).catch(function () {});
    }
  }

  function onNavigation() {
    send();
  }

  function hook(name) {
    var original = history[name];
    history[name] = function () {
      var result = original.apply(this, arguments);
      onNavigation();
      return result;
    };
  }

  hook('pushState');
  hook('replaceState');
  addEventListener('popstate', onNavigation);

  // A prerendered page counts when it is shown, if it ever is.
  if (document.prerendering) {
    document.addEventListener('prerenderingchange', function () { send(document.referrer); }, {once: true});
  } else {
    send(document.referrer);
  }
})();
