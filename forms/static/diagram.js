// Draws a process model with bpmn-js (served by liaison from static/vendor, no CDN) and
// highlights the current steps of an instance. Without bpmn-js it shows a notice instead.
(function () {
  'use strict';
  var box = document.getElementById('diagram');
  var notice = document.getElementById('diagram-notice');
  if (!box) { return; }

  function fail(text) {
    notice.textContent = text;
    notice.hidden = false;
    box.hidden = true;
  }

  if (typeof window.BpmnJS !== 'function') {
    fail('The diagram viewer (bpmn-js) did not load. Run tools/fetch_bpmn_js.sh ' +
         '(make run does it) and reload this page.');
    return;
  }

  var steps = JSON.parse(box.getAttribute('data-current-steps') || '[]');
  var viewer = new window.BpmnJS({ container: box });

  fetch(box.getAttribute('data-bpmn-url'), { credentials: 'same-origin' })
    .then(function (response) {
      if (!response.ok) { throw new Error('the server answered ' + response.status); }
      return response.text();
    })
    .then(function (xml) { return viewer.importXML(xml); })
    .then(function () {
      var canvas = viewer.get('canvas');
      var registry = viewer.get('elementRegistry');
      canvas.zoom('fit-viewport');
      steps.forEach(function (id) {
        if (registry.get(id)) { canvas.addMarker(id, 'current-step'); }
      });
      box.setAttribute('data-rendered', 'true');
    })
    .catch(function (error) {
      var text = String(error && error.message || error);
      if (/no diagram/i.test(text)) {
        text = 'This BPMN file has no diagram layout (BPMNDiagram); open it in a modeler ' +
               'such as bpmn.io and save it to add one.';
      }
      fail('The diagram could not be drawn: ' + text);
    });

  document.querySelectorAll('[data-zoom]').forEach(function (button) {
    button.addEventListener('click', function () {
      var canvas = viewer.get('canvas');
      var how = button.getAttribute('data-zoom');
      if (how === 'fit') { canvas.zoom('fit-viewport'); return; }
      canvas.zoom(canvas.zoom() * (how === 'in' ? 1.25 : 0.8));
    });
  });
}());
