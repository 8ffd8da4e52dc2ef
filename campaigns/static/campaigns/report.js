// The report's opens-and-clicks timeline, drawn by Chart.js from the page's json_script data.
window.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var source = document.getElementById("timeline-data");
  var canvas = document.getElementById("timeline-chart");
  if (!source || !canvas) { return; }
  var data = JSON.parse(source.textContent);
  var labels = data.labels.map(function (iso) {
    var d = new Date(iso);
    return d.toLocaleDateString(document.documentElement.lang || undefined, {month: "short", day: "numeric"}) + " " +
      d.toLocaleTimeString(document.documentElement.lang || undefined, {hour: "2-digit", minute: "2-digit"});
  });
  window.heraldTimeline = new Chart(canvas, {
    type: "bar",
    data: {
      labels: labels,
      datasets: [
        {label: canvas.getAttribute("data-opens-label") || "Opens", data: data.opens, backgroundColor: "#1e88e5"},
        {label: canvas.getAttribute("data-clicks-label") || "Clicks", data: data.clicks, backgroundColor: "#43a047"}
      ]
    },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: {y: {beginAtZero: true, ticks: {precision: 0}}}
    }
  });
});
