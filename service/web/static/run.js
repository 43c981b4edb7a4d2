// forgeflow's run page: follows a run until it ends, without reloading the page.
// The run's states come from the JSON API every 2 s; a job whose state changed gets its section
// again from the server; a running job's log is fetched from where the page stopped (offset).
(function () {
  "use strict";
  var root = document.getElementById("run");
  if (!root || root.dataset.final === "true") return;
  var FINAL = ["succeeded", "failed", "error", "config-error"];
  var ORDER = ["failure", "error", "running", "pending", "success"];
  var shown = {};
  document.querySelectorAll("section.job").forEach(function (s) { shown[s.dataset.task] = s.dataset.state; });

  function get(url, kind) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": kind}}).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r;
    });
  }

  function setState(el, prefix, value) {
    Array.prototype.slice.call(el.classList).forEach(function (c) {
      if (c.indexOf(prefix) === 0) el.classList.remove(c);
    });
    el.classList.add(prefix + value);
  }

  function duration(s) {
    if (s === null || s === undefined) return "";
    if (s < 10) return s.toFixed(1) + "s";
    var t = Math.round(s), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), x = t % 60;
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + (x < 10 ? "0" : "") + x + "s";
    return x + "s";
  }

  function follow(div) {
    if (div.dataset.following) return;
    div.dataset.following = "1";
    function poll() {
      if (!document.body.contains(div)) return; // the finished job's section replaced it
      get(div.dataset.logUrl + "?format=html&offset=" + div.dataset.offset, "application/json")
        .then(function (r) { return r.json(); })
        .then(function (chunk) {
          if (chunk.offset !== Number(div.dataset.offset)) div.innerHTML = ""; // the log started over
          if (chunk.html) {
            var bottom = div.scrollTop + div.clientHeight >= div.scrollHeight - 4;
            div.insertAdjacentHTML("beforeend", chunk.html);
            if (bottom) div.scrollTop = div.scrollHeight;
          }
          div.dataset.offset = chunk.next_offset;
          if (!chunk.complete) setTimeout(poll, 1500);
        })
        .catch(function () { setTimeout(poll, 5000); });
    }
    poll();
  }

  function refreshJob(task) {
    return get(root.dataset.jobs + encodeURIComponent(task), "text/html")
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var old = document.getElementById("job-" + task);
        var holder = document.createElement("template");
        holder.innerHTML = html.trim();
        var fresh = holder.content.firstElementChild;
        if (old && fresh) {
          old.replaceWith(fresh);
          fresh.querySelectorAll(".lines.live").forEach(follow);
        }
      });
  }

  function paint(run) {
    var phase = document.getElementById("run-phase");
    phase.textContent = run.phase;
    setState(phase, "ph-", run.phase);
    document.getElementById("run-summary").textContent = run.summary;
    var byJob = {};
    run.jobs.forEach(function (job) {
      (byJob[job.name] = byJob[job.name] || []).push(job.state);
      document.querySelectorAll('[data-task="' + CSS.escape(job.task) + '"]').forEach(function (el) {
        if (el.classList.contains("dur")) el.textContent = duration(job.duration_seconds);
        else if (el.tagName !== "SECTION") setState(el, "st-", job.state);
      });
    });
    Object.keys(byJob).forEach(function (name) {
      var worst = ORDER.filter(function (s) { return byJob[name].indexOf(s) >= 0; })[0] || "pending";
      document.querySelectorAll('g.node[data-job="' + CSS.escape(name) + '"]').forEach(function (el) {
        setState(el, "st-", worst);
      });
    });
    return run.jobs.filter(function (job) {
      var changed = shown[job.task] !== job.state;
      shown[job.task] = job.state;
      return changed;
    }).map(function (job) { return job.task; });
  }

  function tick() {
    get(root.dataset.api, "application/json")
      .then(function (r) { return r.json(); })
      .then(function (run) {
        var changed = paint(run);
        return Promise.all(changed.map(refreshJob)).then(function () {
          if (FINAL.indexOf(run.phase) >= 0) {
            root.dataset.final = "true";
            var actions = document.querySelector(".actions");
            if (actions) actions.innerHTML = '<a href="">The run is over: reload for its actions</a>';
          } else {
            setTimeout(tick, 2000);
          }
        });
      })
      .catch(function () { setTimeout(tick, 5000); });
  }

  document.querySelectorAll(".lines.live").forEach(follow);
  setTimeout(tick, 2000);
})();
