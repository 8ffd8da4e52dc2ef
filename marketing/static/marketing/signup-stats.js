// A form's views, submissions and confirmations per day, drawn by Chart.js from json_script data.
window.addEventListener("DOMContentLoaded", function () {
  "use strict";
  var source = document.getElementById("signup-chart-data");
  var canvas = document.getElementById("signup-chart");
  if (!source || !canvas || !window.Chart) { return; }
  var data = JSON.parse(source.textContent);
  window.heraldSignupChart = new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        {label: data.names.views, data: data.views, backgroundColor: "#90a4ae"},
        {label: data.names.submissions, data: data.submissions, backgroundColor: "#1e88e5"},
        {label: data.names.confirmed, data: data.confirmed, backgroundColor: "#43a047"}
      ]
    },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      scales: {y: {beginAtZero: true, ticks: {precision: 0}}}
    }
  });
});
