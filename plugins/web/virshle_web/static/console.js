// The serial console: xterm.js on the node's console stream, through `virshle web`.
(function () {
  "use strict";
  var holder = document.getElementById("terminal");
  var term = new Terminal({convertEol: false, cursorBlink: true, scrollback: 5000});
  term.open(holder);
  term.focus();
  var scheme = location.protocol === "https:" ? "wss://" : "ws://";
  var socket = new WebSocket(scheme + location.host + holder.dataset.socket);
  socket.binaryType = "arraybuffer";
  var encoder = new TextEncoder();
  socket.onmessage = function (message) {
    term.write(typeof message.data === "string" ? message.data : new Uint8Array(message.data));
  };
  socket.onclose = function () { term.write("\r\n[the console closed]\r\n"); };
  term.onData(function (data) {
    if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data));
  });
  window.virshleConsole = {term: term, socket: socket};  // for the tests, and for the curious
})();
