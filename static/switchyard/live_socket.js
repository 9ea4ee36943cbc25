// A WebSocket that reconnects with backoff after a network blip or a server restart.
// urlFor() is asked for the URL on every attempt, so a log can resume after its last seq.
const ACCESS_LOST = 4403;

export function liveSocket(urlFor, { onMessage, onStatus, shouldReconnect = () => true }) {
  let delay = 500;
  let socket = null;
  const scheme = location.protocol === "https:" ? "wss" : "ws";

  function open() {
    socket = new WebSocket(`${scheme}://${location.host}${urlFor()}`);
    socket.onopen = () => { delay = 500; onStatus("live"); };
    socket.onmessage = (event) => onMessage(JSON.parse(event.data), socket);
    socket.onclose = (event) => {
      // 4403: the server closed it because this user may no longer see the app; retrying cannot help.
      if (event.code === ACCESS_LOST) { onStatus("access lost"); return; }
      if (!shouldReconnect()) { onStatus("closed"); return; }
      onStatus("reconnecting");
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }
  open();
  return { send: (data) => socket && socket.readyState === 1 && socket.send(JSON.stringify(data)) };
}
