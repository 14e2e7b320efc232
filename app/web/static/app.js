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
