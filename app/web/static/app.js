// Progressive enhancement only: every page works without it.
document.querySelectorAll(".js-print").forEach((button) => {
  button.addEventListener("click", () => window.print());
});
