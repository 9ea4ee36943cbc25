// Reveal the webhook secret on request: fetched with a POST, never rendered into the page.
const button = document.getElementById("reveal-secret");
if (button) {
  button.addEventListener("click", async () => {
    const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
    const response = await fetch(button.dataset.url, { method: "POST", headers: { "X-CSRFToken": csrf } });
    if (response.ok) {
      document.getElementById("webhook-secret").textContent = (await response.json()).secret;
      button.hidden = true;
    }
  });
}
