// Draws the SLA page's charts with Chart.js (served by liaison from static/vendor, no CDN):
// per metric, p50 / p90 / target in hours (lines) over tasks and breaches per week (bars).
(function () {
  'use strict';
  var source = document.getElementById('sla-data');
  var notice = document.getElementById('charts-notice');
  if (!source) { return; }
  if (typeof window.Chart !== 'function') {
    notice.textContent = 'The charting library (Chart.js) did not load. Run ' +
      'tools/fetch_chart_js.sh (make run does it) and reload; the figures are in the table below.';
    notice.hidden = false;
    return;
  }
  var data = JSON.parse(source.textContent);

  function line(label, values, colour, dashed) {
    return { type: 'line', label: label, data: values, yAxisID: 'hours', borderColor: colour,
             backgroundColor: colour, spanGaps: true, borderDash: dashed ? [6, 4] : [],
             pointRadius: dashed ? 0 : 3, tension: 0.2 };
  }

  function draw(metric) {
    var canvas = document.getElementById('chart-' + metric);
    var figures = data[metric];
    if (!canvas || !figures) { return; }
    var sets = [
      { type: 'bar', label: 'Tasks', data: figures.count, yAxisID: 'tasks',
        backgroundColor: 'rgba(91, 100, 117, 0.25)' },
      { type: 'bar', label: 'Breaches', data: figures.breaches, yAxisID: 'tasks',
        backgroundColor: 'rgba(179, 38, 30, 0.75)' },
      line('p50', figures.p50, '#1f5fbf', false),
      line('p90', figures.p90, '#d97706', false)
    ];
    if (figures.target !== null) {
      sets.push(line('Target', data.weeks.map(function () { return figures.target; }),
                     '#b3261e', true));
    }
    new window.Chart(canvas, {
      data: { labels: data.weeks, datasets: sets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: 'index', intersect: false },
        scales: {
          hours: { position: 'left', beginAtZero: true, title: { display: true, text: 'hours' } },
          tasks: { position: 'right', beginAtZero: true, ticks: { precision: 0 },
                   grid: { drawOnChartArea: false }, title: { display: true, text: 'tasks' } }
        }
      }
    });
    canvas.setAttribute('data-rendered', 'true');
  }

  draw('acknowledge');
  draw('resolve');
}());
