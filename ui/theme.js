// Applies the theme chosen with the toggle (kept in localStorage) before the
// page renders; without a choice the browser's colour scheme applies.
(function () {
  try {
    var theme = localStorage.getItem("tokentally-theme");
    if (theme === "dark" || theme === "light") {
      document.documentElement.setAttribute("data-theme", theme);
    }
  } catch (e) {
    /* storage refused (private mode): the browser's scheme applies */
  }
})();
