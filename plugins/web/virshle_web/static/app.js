// Live updates: the events of every node, merged by `virshle web` (Server-Sent Events).
// A VM that changes state changes here; one that comes or goes reloads the list.
(function () {
  "use strict";
  if (!window.EventSource) return;
  var live = document.getElementById("live");
  var source = new EventSource("/events");
  var reloading = null;
  var states = ["created", "running", "paused", "shutdown", "crashed"];
  var byEvent = {"vm-started": "running", "vm-stopped": "shutdown", "vm-paused": "paused",
                 "vm-resumed": "running"};
  source.onopen = function () { if (live) live.textContent = "live"; };
  source.onerror = function () { if (live) live.textContent = "reconnecting…"; };
  source.onmessage = function (message) {
    var event = JSON.parse(message.data);
    var vm = event.vm || {};
    var state = event.state || byEvent[event.event] || vm.state;
    if (vm.uuid && state && states.indexOf(state) >= 0) {
      document.querySelectorAll('[data-uuid="' + vm.uuid + '"] .state, [data-uuid="' + vm.uuid + '"] ~ * .state, #state').forEach(function (cell) {
        var holder = cell.closest("[data-uuid]");
        if (cell.id === "state" && !(holder && holder.dataset.uuid === vm.uuid)) return;
        cell.textContent = state;
        cell.className = "state " + state;
      });
    }
    if ((event.event === "vm-created" || event.event === "vm-deleted" || event.event === "vm-migrated")
        && document.getElementById("vms") && !reloading) {
      reloading = setTimeout(function () { location.reload(); }, 300);
    }
  };
})();
