// Progressive enhancement only: every page works without it.
document.querySelectorAll(".js-print").forEach((button) => {
  button.addEventListener("click", () => window.print());
});
document.querySelectorAll(".js-copy").forEach((button) => {
  button.addEventListener("click", async () => {
    const field = document.getElementById(button.dataset.target);
    field.select();
    try { await navigator.clipboard.writeText(field.value); button.textContent = "Copied"; }
    catch { document.execCommand("copy"); button.textContent = "Copied"; }
  });
});
document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
});
// The day board's "now" line: placed by the server; moved here each minute as time passes.
document.querySelectorAll(".js-now-line").forEach((line) => {
  const shown = performance.now();
  const opens = Number(line.dataset.opens), closes = Number(line.dataset.closes);
  const move = () => {
    const minute = Number(line.dataset.minute) + (performance.now() - shown) / 60000;
    line.hidden = minute < opens || minute >= closes;
    line.style.top = `${((minute - opens) / (closes - opens)) * 100}%`;
    const at = Math.floor(minute);
    line.querySelector(".js-now-time").textContent =
      `${String(Math.floor(at / 60) % 24).padStart(2, "0")}:${String(at % 60).padStart(2, "0")}`;
  };
  window.setInterval(move, 60000);
});
