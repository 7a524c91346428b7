// The mlprov registry UI: read-only; data from /api/v1 with the user's bearer token.
//
// Every string from the API (names, reasons, metrics, model cards) is hostile: the page
// is built with createElement/createElementNS and textContent only, never from markup;
// links in a model card are followed only when they are http(s).
"use strict";
(function () {
  const KEY = "mlprov-token";
  const SVG = "http://www.w3.org/2000/svg";
  const MAX_CARD = 200000;  // characters of a model card rendered (the rest is cut)

  function token() { return sessionStorage.getItem(KEY); }

  // ------------------------------------------------------------------ DOM helpers

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    return node;
  }

  function box(tag, attrs, ...children) {
    const node = el(tag, null, attrs);
    children.forEach((c) => {
      if (c === null || c === undefined) return;
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    });
    return node;
  }

  function table(headers, rows, rowClass) {
    const t = el("table");
    const head = el("tr");
    headers.forEach((h) => head.appendChild(el("th", h)));
    t.appendChild(head);
    rows.forEach((cells, index) => {
      const tr = el("tr");
      const cls = rowClass ? rowClass(index) : "";
      if (cls) tr.setAttribute("class", cls);
      cells.forEach((cell) => {
        const td = el("td");
        if (cell instanceof Node) td.appendChild(cell); else td.textContent = String(cell ?? "");
        tr.appendChild(td);
      });
      t.appendChild(tr);
    });
    return t;
  }

  function link(text, hash) { return el("a", text, { href: hash }); }
  function digest(text) { return el("span", text, { class: "digest" }); }
  function code(text) { return el("code", text); }

  // A verification mark: status "verified", "failed", "unknown", "denied", "refused"...
  function badge(status, why) {
    const node = el("span", status, { class: "badge " + status });
    if (why) node.setAttribute("title", why);
    return node;
  }

  // A fact with the check that backs it, e.g. verified(["v3"], "signed by ci (builder)").
  function verified(value, why) {
    return box("span", {}, value instanceof Node ? value : String(value), " ",
               badge("verified", why), why ? el("span", why, { class: "why" }) : null);
  }

  function facts(pairs) {
    const dl = el("dl", null, { class: "facts" });
    pairs.forEach(([label, value]) => {
      dl.appendChild(el("dt", label));
      const dd = el("dd");
      dd.appendChild(value instanceof Node ? value : document.createTextNode(String(value)));
      dl.appendChild(dd);
    });
    return dl;
  }

  function q(part) { return encodeURIComponent(part); }
  function modelHash(name) { return "#/models/" + q(name); }
  function versionHash(name, version) { return modelHash(name) + "/versions/" + q(version); }

  // "models:/NAME/N" -> a link to its page; anything else as text.
  function uriLink(uri) {
    const m = /^models:\/([^/@]+)\/([1-9][0-9]*)$/.exec(String(uri));
    return m ? link(uri, versionHash(m[1], m[2])) : document.createTextNode(String(uri));
  }

  function numbers(values) {
    return Object.entries(values || {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  // ------------------------------------------------------------------ the API

  async function api(path) {
    const response = await fetch(path, { headers: { Authorization: "Bearer " + token() },
                                         credentials: "omit", cache: "no-store" });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const message = body && body.error ? body.error.message : "HTTP " + response.status;
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function main() { return document.getElementById("main"); }
  function show(...nodes) { main().replaceChildren(...nodes); }

  function crumbs(...parts) {
    const p = el("p", null, { class: "crumbs" });
    parts.forEach((part, i) => {
      if (i) p.appendChild(document.createTextNode(" / "));
      p.appendChild(Array.isArray(part) ? link(part[0], part[1]) : document.createTextNode(part));
    });
    return p;
  }

  function login(message) {
    const form = el("form", null, { id: "login" });
    form.appendChild(el("p", message || "Paste an API token (mlprov server token create) " +
                                        "or an OIDC token:"));
    const input = el("input", null, { type: "password", id: "token", autocomplete: "off" });
    form.appendChild(input);
    form.appendChild(el("button", "Sign in", { type: "submit" }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      sessionStorage.setItem(KEY, input.value.trim());
      route();
    });
    show(form);
  }

  // ------------------------------------------------------------------ Markdown, safely

  // Inline Markdown (code, http(s) links, bold, italics) as DOM nodes; nothing else.
  const INLINE = /`([^`]+)`|\[([^\]]*)\]\(([^()\s]*)\)|\*\*([^*]+)\*\*|(?<![\w])_([^_]+)_(?![\w])|\*([^*\s][^*]*)\*|\\([\\`*_{}[\]()#+\-.!|<>])/g;

  function safeHref(url) {
    try {
      const parsed = new URL(url);  // no base: a relative or odd URL throws
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (error) {
      return null;
    }
  }

  function inline(text) {
    const out = document.createDocumentFragment();
    let last = 0;
    for (const m of String(text).matchAll(INLINE)) {
      if (m.index > last) out.appendChild(document.createTextNode(text.slice(last, m.index)));
      last = m.index + m[0].length;
      if (m[1] !== undefined) out.appendChild(code(m[1]));
      else if (m[2] !== undefined) {
        const href = safeHref(m[3]);
        if (href) {
          out.appendChild(el("a", m[2], { href: href, rel: "noopener noreferrer nofollow",
                                          referrerpolicy: "no-referrer" }));
        } else {
          out.appendChild(el("span", m[2], { class: "inert-link",
                                             title: "not a link: only http(s) links are " +
                                                    "followed (" + m[3] + ")" }));
        }
      } else if (m[4] !== undefined) out.appendChild(el("strong", m[4]));
      else if (m[5] !== undefined) out.appendChild(el("em", m[5]));
      else if (m[6] !== undefined) out.appendChild(el("em", m[6]));
      else out.appendChild(document.createTextNode(m[7]));
    }
    if (last < text.length) out.appendChild(document.createTextNode(text.slice(last)));
    return out;
  }

  function cells(line) {
    let body = line.trim();
    if (body.startsWith("|")) body = body.slice(1);
    if (body.endsWith("|") && !body.endsWith("\\|")) body = body.slice(0, -1);
    return body.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|"));
  }

  const TABLE_RULE = /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/;
  const BULLET = /^\s*[-*+]\s+(.*)$/;
  const NUMBERED = /^\s*\d{1,9}[.)]\s+(.*)$/;
  const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/;

  // Block Markdown: front matter, headings, paragraphs, lists, tables, code, quotes.
  function markdown(source) {
    const root = document.createDocumentFragment();
    let text = String(source);
    const cut = text.length > MAX_CARD;
    if (cut) text = text.slice(0, MAX_CARD);
    const lines = text.replace(/\r\n?/g, "\n").split("\n");
    let i = 0;
    if (lines[0] === "---") {  // YAML front matter (Hugging Face metadata): shown as text
      const end = lines.indexOf("---", 1);
      if (end > 0) {
        const details = el("details");
        details.appendChild(el("summary", "metadata (YAML header)"));
        details.appendChild(box("pre", {}, code(lines.slice(1, end).join("\n"))));
        root.appendChild(details);
        i = end + 1;
      }
    }
    let paragraph = [];
    const flush = () => {
      if (paragraph.length) root.appendChild(box("p", {}, inline(paragraph.join(" "))));
      paragraph = [];
    };
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if (!line.trim()) { flush(); i++; continue; }
      if (/^\s*(```|~~~)/.test(line)) {
        flush();
        const fence = line.trim().slice(0, 3);
        const body = [];
        i++;
        while (i < lines.length && !lines[i].trim().startsWith(fence)) body.push(lines[i++]);
        i++;
        root.appendChild(box("pre", {}, code(body.join("\n"))));
        continue;
      }
      if ((m = HEADING.exec(line))) {
        flush();
        const level = Math.min(m[1].length + 2, 6);  // the page's own h1/h2 stay on top
        root.appendChild(box("h" + level, {}, inline(m[2])));
        i++;
        continue;
      }
      if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) { flush(); root.appendChild(el("hr")); i++; continue; }
      if (line.trim().startsWith("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
        flush();
        const t = el("table");
        const head = el("tr");
        cells(line).forEach((c) => head.appendChild(box("th", {}, inline(c))));
        t.appendChild(head);
        i += 2;
        while (i < lines.length && lines[i].trim().startsWith("|")) {
          const tr = el("tr");
          cells(lines[i]).forEach((c) => tr.appendChild(box("td", {}, inline(c))));
          t.appendChild(tr);
          i++;
        }
        root.appendChild(t);
        continue;
      }
      if (BULLET.test(line) || NUMBERED.test(line)) {
        flush();
        const pattern = BULLET.test(line) ? BULLET : NUMBERED;
        const list = el(pattern === BULLET ? "ul" : "ol");
        while (i < lines.length && (m = pattern.exec(lines[i]))) {
          list.appendChild(box("li", {}, inline(m[1])));
          i++;
        }
        root.appendChild(list);
        continue;
      }
      if ((m = /^\s*>\s?(.*)$/.exec(line))) {
        flush();
        const quote = [];
        while (i < lines.length && (m = /^\s*>\s?(.*)$/.exec(lines[i]))) { quote.push(m[1]); i++; }
        root.appendChild(box("blockquote", {}, inline(quote.join(" "))));
        continue;
      }
      paragraph.push(line.trim());
      i++;
    }
    flush();
    if (cut) root.appendChild(el("p", "(the card is longer; the rest is not shown)",
                                 { class: "error" }));
    return root;
  }

  // ------------------------------------------------------------------ pages

  const STAGES = ["Production", "Staging", "None", "Archived"];

  // Versions per stage of the first models listed (the rows as stored: the server's word).
  async function stageCounts(names) {
    const counts = await Promise.all(names.slice(0, 100).map((name) =>
      api("/api/v1/store/models/" + q(name) + "/counts").then((c) => c.counts, () => null)));
    return new Map(counts.map((c, i) => [names[i], c]));
  }

  async function models() {
    const data = await api("/api/v1/models");
    const stages = await stageCounts(data.models.map((m) => m.name));
    const rows = data.models.map((m) => {
      const counts = stages.get(m.name) || {};
      return [
        link(m.name, modelHash(m.name)), link("v" + m.latestVersion,
                                              versionHash(m.name, m.latestVersion)),
        STAGES.filter((s) => counts[s]).map((s) => s + " " + counts[s]).join(" \u00b7 "),
        box("span", {}, ...Object.entries(m.aliases).flatMap(([a, v]) => [
          link("@" + a, modelHash(m.name) + "/aliases/" + q(a)), "=v" + v + " "]))];
    });
    show(el("h2", "Models"), table(["name", "latest", "versions per stage", "aliases"], rows));
  }

  async function model(name) {
    const data = await api("/api/v1/models/" + q(name));
    const aliases = Object.entries(data.aliases).map(([a, info]) =>
      [link("@" + a, modelHash(data.name) + "/aliases/" + q(a)),
       link("v" + info.version, versionHash(data.name, info.version)), info.updatedAt]);
    const versions = data.versions.map((v) => [
      link("v" + v.version, versionHash(data.name, v.version)), v.stage, digest(v.rootDigest),
      digest(v.identity), v.reviews, v.reproducible ? "" : "non-reproducible", v.createdAt]);
    show(crumbs(["Models", "#/"], data.name), el("h2", data.name),
         el("h3", "Aliases (history on each)"),
         table(["alias", "version", "since"], aliases),
         el("h3", "Versions"),
         table(["version", "stage", "root digest", "identity", "reviews", "", "created"],
               versions));
  }

  function reviewRows(reviews) {
    return reviews.map((r) => r.counted
      ? [r.reviewer, r.decision, r.time, r.comment || "",
         verified("signature", "review signed by " + r.signer + " (reviewer role)")]
      : [digest(r.digest), "", "", "", box("span", {}, badge("failed", r.problem), " ",
                                              el("span", r.problem, { class: "why" }))]);
  }

  async function version(name, number) {
    const base = "/api/v1/models/" + q(name) + "/versions/" + q(number);
    const [d, card] = await Promise.all([api(base), api(base + "/card").catch((e) => e)]);
    const inputs = d.inputs;
    const builder = "signed provenance (builder " + d.builder + ")";
    const nodes = [crumbs(["Models", "#/"], [d.name, modelHash(d.name)], "v" + d.version),
                   el("h2", d.name + " v" + d.version), code(d.uri)];
    const stage = d.stageDecision
      ? verified(d.stage, "decision " + d.stageDecision)
      : verified(d.stage, "never moved: registered in None");
    const aliases = box("span", {}, ...d.aliases.map((a) => box(
      "span", {}, link("@" + a.alias, modelHash(d.name) + "/aliases/" + q(a.alias)), " ",
      badge("verified", "decision " + a.decision + " (audit entry " + a.auditSeq + ")"), " ")));
    const commit = (inputs.code.uri ? inputs.code.uri + " " : "") + "commit " +
                   inputs.code.commit + (inputs.code.dirty ? " (dirty)" : "");
    nodes.push(el("h3", "Facts"), facts([
      ["stage", stage],
      ["aliases", d.aliases.length ? aliases : "none"],
      ["identity", verified(digest(d.identity), "recomputed from the signed inputs")],
      ["root digest", verified(digest(d.rootDigest),
                               d.files + " files, " + d.bytes + " bytes, every blob present")],
      ["registered", verified(d.createdAt, "registration decision " + d.registration)],
      ["code", verified(commit, builder)],
      ["lineage", box("span", {}, link(d.lineage, versionHash(d.name, d.version) + "/lineage"),
                      " ", badge(d.lineage === "verified" ? "verified"
                                 : d.lineage === "failed" ? "failed" : "unknown",
                                 "the lineage walked through the registry's copies"))],
      ...(d.reproducible ? [] : [["reproducible", "no: another version has the same identity"]]),
      ...(d.description ? [["description", d.description + " (the catalog's, audited)"]] : []),
    ]));

    nodes.push(el("h3", "Datasets"));
    nodes.push(inputs.datasets.length
      ? table(["name", "digest", "where", ""], inputs.datasets.map((x) =>
          [x.name, digest(x.digest), x.uri || "", verified("", builder)]))
      : el("p", "none recorded"));

    nodes.push(el("h3", "Metrics"));
    const ev = d.evaluation;
    if (!ev) nodes.push(el("p", "none attested"));
    else {
      const signed = "eval statement signed by " + (ev.signedBy || "?") + " (evaluator " +
                     ev.evaluator + ")";
      nodes.push(verified("", signed));
      const rows = numbers(ev.metrics).map(([k, v]) => ["(overall)", k, v]);
      numbers(ev.slices).forEach(([slice, values]) =>
        numbers(values).forEach(([k, v]) => rows.push([slice, k, v])));
      nodes.push(table(["slice", "metric", "value"], rows));
      if (ev.datasets.length) {
        nodes.push(el("h4", "Evaluation data"));
        nodes.push(table(["name", "digest", "where"], ev.datasets.map((x) =>
          [x.name, digest(x.digest), x.uri || ""])));
      }
    }

    nodes.push(el("h3", "Lineage"));
    const kin = d.parents.map((p) => [
      "parent (" + p.role + ")", p.name, p.rootDigest ? digest(p.rootDigest) : "",
      p.external ? badge("unknown", "external: pinned by digest, not verified")
                 : box("span", {}, ...p.registered.map((u) => box("span", {}, uriLink(u), " ")))]);
    d.children.forEach((c) => kin.push([
      "child (" + (c.role || "?") + ")", uriLink(c.uri), "",
      c.verified ? badge("verified", "its evidence and lineage through this version")
                 : box("span", {}, badge("failed", c.problem), " ",
                       el("span", c.problem, { class: "why" }))]));
    nodes.push(kin.length ? table(["link", "model", "digest", ""], kin) : el("p", "no parents, no children"),
               link("the lineage graph", versionHash(d.name, d.version) + "/lineage"));

    nodes.push(el("h3", "Reviews"));
    nodes.push(d.reviews.length
      ? table(["reviewer", "decision", "time", "comment", ""], reviewRows(d.reviews))
      : el("p", "none"));

    nodes.push(el("h3", "SBOM"));
    const sbom = d.sbom;
    if (!sbom) nodes.push(el("p", "none"));
    else {
      nodes.push(facts([
        ["format", verified("CycloneDX " + sbom.specVersion, "SBOM statement " + builder)],
        ["components", String(sbom.components)],
        ["packages", String(sbom.packages)],
        ["licences", numbers(sbom.licenses).map(([k, v]) => k + " (" + v + ")").join(", ") ||
                     "none stated"],
      ]));
      nodes.push(el("h4", "Key components (the model's direct dependencies)"));
      nodes.push(table(["name", "type", "version", "purl", "licences"],
                       sbom.keyComponents.map((c) => [c.name, c.type, c.version || "",
                                                      c.purl || "", c.licenses.join(", ")])));
    }

    nodes.push(el("h3", "Decision history"));
    nodes.push(table(["#", "time", "kind", "", "actor", "reason"], d.history.map((h) => [
      h.seq, h.time, h.kind, outcome(h), h.actor, h.reason || ""]),
      (index) => (denial(d.history[index]) ? "denied" : "")));

    const section = box("section", { class: "card", id: "card" }, el("h3", "Model card"));
    if (card instanceof Error) section.appendChild(el("p", card.message, { class: "error" }));
    else {
      section.appendChild(verified("", "re-rendered from the verified provenance, SBOM and eval"));
      section.appendChild(box("div", { class: "markdown" }, markdown(card.markdown)));
    }
    nodes.push(section);
    show(...nodes);
  }

  // ------------------------------------------------------------------ lineage graph (SVG)

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function clip(text, size) {
    text = String(text ?? "");
    return text.length > size ? text.slice(0, size - 1) + "\u2026" : text;
  }

  // verified / failed / unknown for a child -> parent link of the walked graph.
  function edgeStatus(edge, byId) {
    const ends = [byId.get(edge.child), byId.get(edge.parent)];
    if (!edge.ok || ends.some((n) => n && n.status === "failed")) return "failed";
    if (ends.every((n) => n && n.status === "verified")) return "verified";
    return "unknown";  // an external, missing or unverified end: nothing to check it against
  }

  function lineageModel(graph) {
    const byId = new Map(graph.nodes.map((n) => [n.id, n]));
    const nodes = graph.nodes.map((n) => ({
      id: n.id, level: -n.depth, title: n.name || "?", start: n.depth === 0,
      sub: n.evidence && n.depth > 0 ? n.evidence : (n.rootDigest || "").slice(0, 19),
      status: n.status, detail: n.detail }));
    const links = graph.edges.map((e) => ({ child: e.child, parent: e.parent, role: e.role,
                                            status: edgeStatus(e, byId), detail: e.detail }));
    const startId = graph.start;
    const byUri = new Map([[graph.registryUri, startId]]);
    (graph.descendants || []).forEach((x) => {
      byUri.set(x.uri, "desc:" + x.uri);
      nodes.push({ id: "desc:" + x.uri, level: x.depth, title: x.name, sub: x.uri, start: false,
                   status: x.verified ? "verified" : "failed", detail: x.problem || "" });
    });
    (graph.descendants || []).forEach((x) => {
      links.push({ child: "desc:" + x.uri, parent: byUri.get(x.parent) || startId,
                   role: x.role || "?", status: x.verified ? "verified" : "failed",
                   detail: x.problem || "verified through its parent" });
    });
    return { nodes, links };
  }

  function drawLineage(graph) {
    const { nodes, links } = lineageModel(graph);
    const W = 230, H = 54, GX = 40, GY = 90, PAD = 20;
    const levels = new Map();
    nodes.forEach((n) => { if (!levels.has(n.level)) levels.set(n.level, []); levels.get(n.level).push(n); });
    const order = [...levels.keys()].sort((a, b) => a - b);
    const widest = Math.max(...[...levels.values()].map((l) => l.length));
    const width = PAD * 2 + widest * W + (widest - 1) * GX;
    const height = PAD * 2 + order.length * H + (order.length - 1) * GY;
    const at = new Map();
    order.forEach((level, row) => {
      const here = levels.get(level);
      const used = here.length * W + (here.length - 1) * GX;
      here.forEach((n, col) => at.set(n.id, { x: (width - used) / 2 + col * (W + GX),
                                              y: PAD + row * (H + GY) }));
    });
    const root = svg("svg", { class: "lineage", id: "lineage-graph", width, height,
                              viewBox: "0 0 " + width + " " + height, role: "img",
                              "aria-label": "lineage graph" });
    root.appendChild(svg("title", {}, "Lineage of " + graph.registryUri));
    const defs = svg("defs");
    const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
                                   markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" });
    marker.appendChild(svg("path", { d: "M 0 0 L 10 5 L 0 10 z" }));
    defs.appendChild(marker);
    root.appendChild(defs);
    links.forEach((link) => {
      const from = at.get(link.child), to = at.get(link.parent);
      if (!from || !to) return;
      const g = svg("g", { class: "edge " + link.status, "data-status": link.status });
      g.appendChild(svg("title", {}, link.role + ": " + link.status + " \u2014 " + link.detail));
      const x1 = from.x + W / 2, y1 = from.y, x2 = to.x + W / 2, y2 = to.y + H;
      g.appendChild(svg("line", { x1, y1, x2, y2, "marker-end": "url(#arrow)" }));
      g.appendChild(svg("text", { x: (x1 + x2) / 2 + 6, y: (y1 + y2) / 2, class: "edge-label" },
                        link.role + " \u00b7 " + link.status));
      root.appendChild(g);
    });
    nodes.forEach((n) => {
      const p = at.get(n.id);
      const g = svg("g", { class: "node " + n.status + (n.start ? " start" : ""),
                           "data-status": n.status });
      g.appendChild(svg("title", {}, n.title + " (" + n.status + ") " + (n.detail || "")));
      g.appendChild(svg("rect", { x: p.x, y: p.y, width: W, height: H, rx: 6 }));
      g.appendChild(svg("text", { x: p.x + 8, y: p.y + 18 }, clip(n.title, 32)));
      g.appendChild(svg("text", { x: p.x + 8, y: p.y + 33, class: "sub" }, clip(n.sub, 38)));
      g.appendChild(svg("text", { x: p.x + 8, y: p.y + 47, class: "sub" }, n.status));
      root.appendChild(g);
    });
    return { root, nodes, links };
  }

  async function lineage(name, number) {
    const graph = await api("/api/v1/models/" + q(name) + "/versions/" + q(number) +
                            "/lineage?descendants=true");
    const drawn = drawLineage(graph);
    const rows = drawn.links.map((l) => {
      const title = (id) => (drawn.nodes.find((n) => n.id === id) || { title: id }).title;
      return [title(l.child), l.role, title(l.parent), badge(l.status, l.detail), l.detail];
    });
    const status = graph.status === "verified" ? "verified"
                   : graph.status === "failed" ? "failed" : "unknown";
    show(crumbs(["Models", "#/"], [name, modelHash(name)], ["v" + number,
                                                             versionHash(name, number)],
                "lineage"),
         el("h2", "Lineage of " + graph.registryUri),
         box("p", {}, "The graph as a whole: ", badge(status, graph.status), " ",
             el("span", graph.status, { class: "why" })),
         drawn.root,
         el("h3", "Links (child \u2192 parent)"),
         table(["child", "role", "parent", "", "detail"], rows));
  }

  // ------------------------------------------------------------------ alias history

  function timeline(changes, describe) {
    const list = el("ol", null, { class: "timeline", id: "timeline" });
    let previous = null;
    changes.forEach((c) => {
      const gone = c.version === null || c.version === undefined;
      const item = el("li", null, { class: gone ? "deleted" : "moved" });
      const move = gone ? (previous === null ? "removed" : "v" + previous + " \u2192 (removed)")
                        : (previous === null ? "(new) \u2192 v" + c.version
                                             : "v" + previous + " \u2192 v" + c.version);
      item.appendChild(el("div", move, { class: "move" }));
      item.appendChild(box("div", { class: "meta" }, c.time + " \u00b7 " + c.kind + " \u00b7 by ",
                           el("strong", c.actor), " \u00b7 audit entry #" + c.seq));
      item.appendChild(box("div", {}, "why: ", el("q", c.reason || "(no reason given)")));
      if (c.decision) item.appendChild(box("div", { class: "meta" }, "decision ",
                                           digest(c.decision)));
      if (describe) describe(item, c);
      list.appendChild(item);
      previous = gone ? null : c.version;
    });
    return list;
  }

  async function aliasHistory(name, alias) {
    const data = await api("/api/v1/models/" + q(name) + "/aliases/" + q(alias) + "/history");
    show(crumbs(["Models", "#/"], [name, modelHash(name)], "@" + alias),
         el("h2", "History of " + name + "@" + alias),
         el("p", "Every accepted change, oldest first, read from the audit log's hashed entries."),
         data.changes.length ? timeline(data.changes, (item, c) => {
           if (c.version) item.appendChild(link("version page", versionHash(name, c.version)));
         }) : el("p", "no changes"));
  }

  // ------------------------------------------------------------------ audit log

  const DENIAL_KIND = /refus|denied|deny|denial/i;

  function denial(entry) { return entry.accepted === false || DENIAL_KIND.test(entry.kind || ""); }

  function outcome(entry) {
    if (!denial(entry)) return badge("accepted");
    return badge(/refus/i.test(entry.kind || "") ? "refused" : "denied",
                 entry.reason || "the decision is a denial");
  }

  // What an entry is about: a version's page, a deployment's page, or the name.
  function subject(e) {
    if (!e.name) return "";
    if (/^deployment\./.test(e.kind || "")) return link(e.name, "#/deployments/" + q(e.name));
    return e.version ? link(e.name + " v" + e.version, versionHash(e.name, e.version)) : e.name;
  }

  // A denial's own words (a gate's "deny" messages), under its reason.
  function denialsOf(e) {
    const deny = e.details && Array.isArray(e.details.deny) ? e.details.deny : [];
    if (!denial(e) || !deny.length) return null;
    return box("ul", { class: "deny" }, ...deny.slice(0, 20).map((d) => el("li", clip(d, 500))));
  }

  // An entry's details (any kind's, as stored): collapsed, the JSON shown as text.
  function detailsCell(details) {
    if (!details || typeof details !== "object" || !Object.keys(details).length) return "";
    const keys = Object.keys(details);
    return box("details", {}, el("summary", clip(keys.join(", "), 60)),
               box("pre", {}, code(clip(JSON.stringify(details, null, 1), 4000))));
  }

  async function audit(params) {
    const ready = await api("/api/v1/ready");
    const head = Number(ready.auditSeq) || 0;
    const before = Math.max(1, Math.min(Math.floor(Number(params.get("before"))) || head + 1,
                                        head + 1));
    const since = Math.max(0, before - 1 - 200);
    const count = before - 1 - since;
    const data = count > 0 ? await api("/api/v1/audit?since=" + since + "&limit=" + count)
                           : { entries: [] };
    let entries = data.entries.filter((e) => e.seq < before).reverse();
    const onlyDenials = params.get("denials") === "1";
    if (onlyDenials) entries = entries.filter(denial);
    const rows = entries.map((e) => [
      e.seq, e.time, e.kind, outcome(e), e.actor, subject(e), e.target || "",
      box("span", {}, e.reason || "", denialsOf(e)), detailsCell(e.details)]);
    const nav = box("p", {}, onlyDenials ? link("all entries", "#/audit")
                                         : link("denials and refusals only", "#/audit?denials=1"));
    if (since > 0) {
      nav.appendChild(document.createTextNode(" \u00b7 "));
      nav.appendChild(link("older entries", "#/audit?before=" + (since + 1) +
                                            (onlyDenials ? "&denials=1" : "")));
    }
    show(el("h2", "Audit log (newest first)"),
         el("p", "Entries " + (since + 1) + " to " + (before - 1) + " of " + head +
                 "; denials and refusals are marked. The whole chain is verified by " +
                 "`mlprov audit verify`."),
         nav,
         table(["#", "time", "kind", "", "actor", "model", "target", "reason", "details"], rows,
               (index) => (denial(entries[index]) ? "denied" : "")));
  }

  // ------------------------------------------------------------------ deployments

  async function deployments() {
    const data = await api("/api/v1/deployments");
    const names = [...new Set(data.deployments.map((d) => d.name))];
    const rows = data.deployments.slice().reverse().map((d) => [
      link(d.name, "#/deployments/" + q(d.name)), "v" + d.version, d.stage, d.createdAt]);
    show(el("h2", "Deployments"),
         el("p", names.length + " deployment(s); open one to see it verified."),
         table(["deployment", "version", "stage", "created"], rows));
  }

  async function deployment(name) {
    const [data, log] = await Promise.all([
      api("/api/v1/deployments/" + q(name)),
      api("/api/v1/audit?name=" + q(name) + "&limit=5000")]);
    const nodes = [crumbs(["Deployments", "#/deployments"], name), el("h2", "Deployment " + name)];
    data.deployments.slice().reverse().forEach((v) => {
      nodes.push(el("h3", v.uri + " \u2014 " + v.stage));
      nodes.push(facts([
        ["spec", verified(digest(v.specDigest), "statement signed by " + v.signedBy)],
        ["aliases", v.aliases.length ? verified(v.aliases.map((a) => "@" + a).join(" "),
                                                "each alias's signed decision")
                                     : "none"],
        ["created", v.createdAt]]));
      nodes.push(table(["member", "stage", "root digest", "asked for", ""], v.members.map((m) => [
        uriLink(m.uri), m.stage, digest(m.rootDigest), m.requested,
        badge("verified", "evidence re-verified; stage from its signed decision")])));
    });
    const changes = log.entries.filter((e) => /^deployment\.alias\./.test(e.kind));
    const byAlias = new Map();
    changes.forEach((e) => {
      const alias = String(e.target || "").replace(/^deployment@/, "");
      if (!byAlias.has(alias)) byAlias.set(alias, []);
      byAlias.get(alias).push(e);
    });
    nodes.push(el("h3", "Deployment alias history"));
    if (!byAlias.size) nodes.push(el("p", "no deployment alias was ever set"));
    byAlias.forEach((entries, alias) => {
      nodes.push(el("h4", "deployments:/" + name + "@" + alias));
      const accepted = entries.filter((e) => e.accepted).map((e) => ({
        ...e, version: e.kind === "deployment.alias.delete" ? null : e.version }));
      nodes.push(timeline(accepted));
      const denied = entries.filter(denial);
      if (denied.length) {
        nodes.push(table(["#", "time", "", "actor", "to", "reason"], denied.map((e) =>
          [e.seq, e.time, outcome(e), e.actor, "v" + e.version, e.reason || ""]),
          () => "denied"));
      }
    });
    show(...nodes);
  }

  // ------------------------------------------------------------------ routing

  async function whoami() {
    const me = await api("/api/v1/whoami");
    const nav = document.getElementById("nav");
    nav.replaceChildren(link("Models", "#/"), link("Deployments", "#/deployments"),
                        link("Audit log", "#/audit"),
                        el("span", "signed in as " + me.name, { id: "who" }),
                        el("a", "sign out", { href: "#/signout" }));
  }

  function parts(path) {
    return path.split("/").filter((p) => p !== "").map((p) => {
      try { return decodeURIComponent(p); } catch (error) { return p; }
    });
  }

  async function dispatch(path, params) {
    const p = parts(path);
    if (p[0] === "models" && p.length === 2) return model(p[1]);
    if (p[0] === "models" && p[2] === "versions" && p.length === 4) return version(p[1], p[3]);
    if (p[0] === "models" && p[2] === "versions" && p[4] === "lineage" && p.length === 5) {
      return lineage(p[1], p[3]);
    }
    if (p[0] === "models" && p[2] === "aliases" && p.length === 4) return aliasHistory(p[1], p[3]);
    if (p[0] === "audit" && p.length === 1) return audit(params);
    if (p[0] === "deployments" && p.length === 1) return deployments();
    if (p[0] === "deployments" && p.length === 2) return deployment(p[1]);
    return models();
  }

  async function route() {
    const hash = location.hash;
    if (hash.startsWith("#token=")) {  // for scripts: the fragment never reaches the server
      const params = new URLSearchParams(hash.slice(1));
      sessionStorage.setItem(KEY, params.get("token") || "");
      const next = params.get("next") || "/";
      history.replaceState(null, "", location.pathname + "#" + (next.startsWith("/") ? next : "/"));
    }
    if (location.hash === "#/signout") {
      sessionStorage.removeItem(KEY);
      history.replaceState(null, "", location.pathname + "#/");
    }
    document.body.setAttribute("data-state", "loading");  // "ready" again when drawn
    try {
      if (!token()) { login(); return; }
      await whoami();
      const full = location.hash.replace(/^#/, "") || "/";
      const [path, query] = full.split("?", 2);
      await dispatch(path, new URLSearchParams(query || ""));
    } catch (error) {
      if (error.status === 401) {
        sessionStorage.removeItem(KEY);
        login("Not signed in: " + error.message);
      } else {
        show(el("p", error.message, { class: "error", id: "error" }));
      }
    } finally {
      document.body.setAttribute("data-state", "ready");
    }
  }

  // For tests (tests/server/test_ui.py): the Markdown renderer, which returns DOM nodes.
  window.mlprovUi = Object.freeze({ markdown: markdown });
  window.addEventListener("hashchange", route);
  document.addEventListener("DOMContentLoaded", route);
})();
