// Events per type per day on the event analytics page, drawn by Chart.js from json_script data.
window.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var source = document.getElementById("event-chart-data");
  var canvas = document.getElementById("event-chart");
  if (!source || !canvas || !window.Chart) { return; }
  var data = JSON.parse(source.textContent);
  var colours = ["#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#e53935", "#00897b", "#6d4c41", "#546e7a"];
  window.heraldEventChart = new Chart(canvas, {
    type: "line",
    data: {
      labels: data.labels,
      datasets: data.series.map(function (series, index) {
        var colour = colours[index % colours.length];
        return {label: series.label, data: series.data, borderColor: colour, backgroundColor: colour, tension: 0.2};
      })
    },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: {y: {beginAtZero: true, ticks: {precision: 0}}}
    }
  });
});
