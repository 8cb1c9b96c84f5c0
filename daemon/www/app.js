/*
 * app.js - the election-night page: the live leaderboard, a hemicycle, the
 * provinces and a province's drill-down, from tallyd's own JSON.
 *
 * Live: EventSource on /v1/events (the browser resumes with Last-Event-ID);
 * when the stream is not there (404) or fails to open, conditional polling
 * of /v1/leaderboard with If-None-Match (and ?wait= for a long-poll where
 * the daemon offers it).  Updates change only the DOM nodes whose values
 * changed, at most once per animation frame, so nothing reloads or flickers
 * and a burst of versions costs one render.
 */
(function () {
  'use strict';

  var RTL = ['ar', 'he', 'fa', 'ur', 'ps', 'yi', 'dv', 'ckb', 'sd', 'ug'];
  /* The daemon sends every coalition's colour (lib/palette.c); this grey
   * only stands in for an id the definition does not know. */
  var UNKNOWN_COLOR = '#8a8f98';
  var RANK_ROWS = 12;
  var SVGNS = 'http://www.w3.org/2000/svg';

  /* Interface strings; names of places and coalitions come from the definition. */
  var T = {
    en: {},
    ar: {
      skip: 'انتقل إلى النتائج', connecting: 'جارٍ الاتصال', live: 'مباشر', polling: 'تحديث دوري',
      offline: 'غير متصل', reconnecting: 'إعادة الاتصال', updated: 'آخر تحديث', version: 'الإصدار',
      language: 'اللغة', votes_counted: 'الأصوات المحتسبة', provinces_reporting: 'المحافظات المُبلِّغة',
      provinces_final: 'نهائية', stations: 'المحطات المُبلِّغة', seats_allocated: 'المقاعد الموزعة',
      parliament: 'البرلمان', map: 'الخريطة', ranking: 'الترتيب', ranking_caption: 'الترتيب الوطني حسب المقاعد ثم الأصوات',
      rank: '#', coalition: 'التحالف', votes: 'الأصوات', share: 'النسبة', seats: 'المقاعد', change: 'التغيّر',
      provinces: 'المحافظات', provinces_caption: 'كل محافظة: المتصدر والمقاعد والحالة والتقدم',
      province: 'المحافظة', leader: 'المتصدر', status: 'الحالة', progress: 'التقدم', latest: 'آخر المستجدات',
      back: '→ كل المحافظات', list: 'القائمة', threshold: 'العتبة', next_seat: 'أصوات للمقعد التالي',
      last_margin: 'هامش المقعد الأخير', quotients: 'المقاعد بترتيب منحها', history: 'السجل',
      definition: 'التعريف', lists_caption: 'القوائم في هذه المحافظة', none: 'لا نتائج', partial: 'جزئية',
      final: 'نهائية', majority: 'الأغلبية', of_seats: 'من {n} مقعدًا', pending: 'معلّق (تعادل)',
      unallocated: 'لم توزع بعد', show_all: 'عرض الكل ({n})', show_fewer: 'عرض أقل',
      waiting: 'بانتظار النتائج الأولى…', leads: '{name} في الصدارة بـ {seats} مقعدًا',
      short_of: 'ينقصه {n} للأغلبية ({m} من {t})', has_majority: 'أغلبية ({m} من {t})',
      ahead: 'متقدم بـ {n} على {name}', tied_with: 'متعادل مع {name}', revision: 'المراجعة',
      correction: 'تصحيح', tied: '{n} مقعد متعادل بين {lists} ({rule})', lot: 'قرعة', by_votes: 'الأصوات',
      passed: 'تجاوز', failed: 'لم يتجاوز', excluded: 'مستبعد', exempt: 'معفى', received: 'استُلم',
      reported: 'أُعلن', note: 'ملاحظة', changed: 'التغيير', no_history: 'لا نتائج بعد',
      seat_n: 'المقعد {n}', remainder: 'الباقي', others: 'أخرى', stations_of: '{r} من {t}',
      moved: 'تحرك', nothing_moved: 'لا تغيير في المقاعد', seats_word: 'مقاعد',
      unknown_province: 'لا توجد محافظة بهذا المعرّف',
      no_station_counts: 'لا أعداد للمحطات', stations_in: '{r} من {t} في {n} من {m} محافظات',
      resynced: 'أُعيد الاتصال: ما فات من الإصدار {a} إلى {b}، من السجل',
      from_history: 'من السجل',
      night_title: 'ليلة الانتخابات', contests: 'الانتخابات', all_contests: '→ كل الانتخابات',
      no_contest: 'لا انتخابات بالمعرّف "{id}" هنا: القائمة أدناه.',
      majority_clinched: 'الأغلبية: {name}', majority_open: 'الأغلبية لم تُحسم بعد',
      majority_hung: 'لا قائمة تستطيع بلوغ الأغلبية', votes_word: 'صوتًا',
      contests_json: 'الانتخابات (JSON)',
      map_seats: 'المقاعد حسب المحافظة', map_first: 'المتصدر حسب المحافظة',
      map_sub: 'الإصدار {v}، {r} من {t} محافظة مُبلِّغة', map_first_is: 'المتصدر {name}',
      results_log: 'سجل النتائج الموقّع', log_entries: 'إدخالات', log_root: 'الجذر',
      log_checkpoint: 'نقطة التحقق', log_key: 'مفتاح التحقق',
      log_how: 'طريقة التحقق: tallyctl verify log (docs/VERIFY.md)'
    }
  };
  var EN = {
    skip: 'Skip to the results', connecting: 'connecting', live: 'live', polling: 'polling',
    offline: 'offline', reconnecting: 'reconnecting', updated: 'Updated', version: 'version',
    language: 'Language', map: 'Map', votes_counted: 'Votes counted', provinces_reporting: 'Provinces reporting',
    provinces_final: 'Final', stations: 'Stations reporting', seats_allocated: 'Seats allocated',
    parliament: 'Parliament', ranking: 'Ranking', ranking_caption: 'National ranking by seats, then votes',
    rank: '#', coalition: 'Coalition', votes: 'Votes', share: 'Share', seats: 'Seats', change: 'Change',
    provinces: 'Provinces', provinces_caption: 'Every province: its leader, seats, status and progress',
    province: 'Province', leader: 'Leader', status: 'Status', progress: 'Progress', latest: 'Latest',
    back: '← All provinces', list: 'List', threshold: 'Threshold', next_seat: 'Votes to next seat',
    last_margin: 'Margin of last seat', quotients: 'Seats in award order', history: 'History',
    results_log: 'Signed results log', log_entries: 'entries', log_root: 'root', log_checkpoint: 'checkpoint',
    log_key: 'verifier key', log_how: 'how to verify: tallyctl verify log (docs/VERIFY.md)',
    definition: 'Definition', lists_caption: 'Lists in this province', none: 'none', partial: 'partial',
    final: 'final', majority: 'Majority', of_seats: 'of {n} seats', pending: 'Pending (tie)',
    unallocated: 'Not yet allocated', show_all: 'Show all ({n})', show_fewer: 'Show fewer',
    waiting: 'Waiting for the first results…', leads: '{name} leads with {seats} seats',
    short_of: '{n} short of a majority ({m} of {t})', has_majority: 'a majority ({m} of {t})',
    ahead: '{n} ahead of {name}', tied_with: 'level with {name}', revision: 'revision',
    correction: 'correction', tied: '{n} seat(s) tied between {lists} ({rule})', lot: 'by lot',
    by_votes: 'by votes', passed: 'passed', failed: 'below', excluded: 'excluded', exempt: 'exempt',
    received: 'received', reported: 'reported', note: 'note', changed: 'changed',
    no_history: 'No results yet', seat_n: 'seat {n}', remainder: 'remainder', others: 'Others',
    stations_of: '{r} of {t}', moved: 'moved', nothing_moved: 'no seat moved', seats_word: 'seats',
    unknown_province: 'No province with this id',
    no_station_counts: 'no station counts', stations_in: '{r} of {t} in {n} of {m} provinces',
    resynced: 'reconnected: versions {a} to {b} caught up from the history',
    from_history: 'from the history',
    night_title: 'Election night', contests: 'Contests', all_contests: '← All contests',
    no_contest: 'No contest "{id}" in this daemon: the contests are below.',
    majority_clinched: 'Majority: {name}', majority_open: 'Majority still open',
    majority_hung: 'No list can reach a majority', votes_word: 'votes', contests_json: 'Contests (JSON)',
    map_seats: 'seats by province', map_first: 'first place by province',
    map_sub: 'version {v}, {r} of {t} provinces reporting', map_first_is: 'first {name}'
  };

  var $ = function (id) { return document.getElementById(id); };
  /* One contest's view (?contest=ID: /v1/contests/ID/...), else the first's. */
  var CONTEST = new URLSearchParams(location.search).get('contest');
  var API = CONTEST ? '/v1/contests/' + encodeURIComponent(CONTEST) : '/v1';
  window.tallydRenderStats = { n: 0, total: 0, max: 0 };
  var S = {
    lang: 'en', election: null, co: {}, pv: {}, lb: null, prevLb: null, tickLb: null,
    provinces: null, provEtag: null, lbEtag: null, showAll: false,
    sort: { key: 'name', dir: 1 }, pendingTies: {}, drill: null,
    lbs: {}, list2co: {}, resync: false, frame: 0, dirty: {}, provBusy: false, provAgain: false, mode: 'connecting'
  };

  function t(key, args) {
    var s = (T[S.lang] && T[S.lang][key]) || EN[key] || key;
    if (args) s = s.replace(/\{(\w+)\}/g, function (m, k) { return args[k] !== undefined ? args[k] : m; });
    return s;
  }
  var nf, pf, tf, rtlPage = false;
  function num(n) { return n === null || n === undefined ? '–' : nf.format(n); }
  /* A percentage in the locale's own form ("7.82%", "7,82 %", "٧٫٨٢٪"), never
   * a figure and a sign glued by hand: in a right-to-left page the sign after
   * a space took the page's direction, and 9.06 read "% 9.06".  Isolated
   * (FSI … PDI) in such a page, so the text around it cannot reorder it. */
  function percent(f, n) {
    var s = f.format(n / 100);
    return rtlPage ? '\u2068' + s + '\u2069' : s;
  }
  function pct(n) { return n === null || n === undefined ? '–' : percent(pf, n); }
  function signed(n) { return n > 0 ? '+' + num(n) : n < 0 ? '−' + num(-n) : '0'; }
  function when(iso) {
    if (!iso) return '–';
    var d = new Date(iso);
    if (isNaN(d)) return iso;
    return d.toLocaleString(S.lang === 'en' ? undefined : S.lang, { hour: '2-digit', minute: '2-digit', second: '2-digit', day: 'numeric', month: 'short' });
  }
  function named(o) { return (o && o.names && o.names[S.lang]) || (o && o.name) || ''; }
  function coName(id) { var c = S.co[id]; return c ? named(c) : id; }
  function coShort(id) {
    var c = S.co[id];
    if (!c) return id;
    return (c.names && c.names[S.lang]) || c.short || c.name;
  }
  function coColor(id) {
    var c = S.co[id];
    return (c && c.color) || UNKNOWN_COLOR;
  }
  function pvName(id) { var p = S.pv[id]; return p ? named(p) : id; }
  function setText(el, s) { if (el.textContent !== s) { el.textContent = s; return true; } return false; }
  /* A changed cell glows briefly; an animation, not a class toggled
   * through a forced layout, so a burst of versions costs no reflow. */
  var still = window.matchMedia && matchMedia('(prefers-reduced-motion: reduce)').matches;
  function flash(e) {
    if (still || !e.animate) return;
    e.animate([{ backgroundColor: getFlash() }, { backgroundColor: 'transparent' }], { duration: 1200, easing: 'ease-out' });
  }
  var flashColor;
  function getFlash() {
    return flashColor || (flashColor = getComputedStyle(document.documentElement).getPropertyValue('--flash').trim() || '#fff3b0');
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function swatch(id) {
    var s = el('span', 'swatch');
    s.style.background = coColor(id);
    s.setAttribute('aria-hidden', 'true');
    return s;
  }

  /* ---- language ---- */

  function setupLang() {
    var q = new URLSearchParams(location.search).get('lang');
    var langs = {};
    S.election.coalitions.concat(S.election.provinces).forEach(function (o) {
      Object.keys(o.names || {}).forEach(function (l) { langs[l] = true; });
    });
    Object.keys(T).forEach(function (l) { if (l !== 'en') langs[l] = langs[l] || false; });
    S.lang = q && (langs[q] !== undefined || T[q]) ? q : 'en';
    var sel = $('lang');
    var list = ['en'].concat(Object.keys(langs).filter(function (l) { return langs[l]; }));
    if (list.length > 1) {
      sel.parentNode.hidden = false;
      list.forEach(function (l) {
        var o = el('option', '', l === 'en' ? 'Default' : displayLang(l));
        o.value = l;
        o.lang = l;
        sel.appendChild(o);
      });
      sel.value = S.lang;
      sel.addEventListener('change', function () {
        var u = new URL(location.href);
        if (sel.value === 'en') u.searchParams.delete('lang'); else u.searchParams.set('lang', sel.value);
        history.replaceState(null, '', u.pathname + u.search + u.hash);
        S.lang = sel.value;
        applyLang();
        rebuild();
      });
    }
    applyLang();
  }
  function displayLang(l) {
    try { return new Intl.DisplayNames([l], { type: 'language' }).of(l) || l; } catch (e) { return l; }
  }
  function applyLang() {
    var base = S.lang.split('-')[0];
    var rtl = RTL.indexOf(base) >= 0 || /-(Arab|Hebr|Thaa|Syrc)\b/.test(S.lang);
    document.documentElement.lang = S.lang;
    document.documentElement.dir = rtl ? 'rtl' : 'ltr';
    var loc = S.lang === 'en' ? undefined : S.lang;
    nf = new Intl.NumberFormat(loc);
    pf = new Intl.NumberFormat(loc, { style: 'percent', minimumFractionDigits: 2, maximumFractionDigits: 2 });
    tf = new Intl.NumberFormat(loc, { style: 'percent', maximumFractionDigits: 4 });
    rtlPage = rtl;
    document.querySelectorAll('[data-t]').forEach(function (e) { e.textContent = t(e.getAttribute('data-t')); });
    setText($('election-name'), S.election.names && S.election.names[S.lang] || S.election.name);
    document.title = $('election-name').textContent + ' · tallyd';
    setConn(S.mode);
  }
  /* A language change rebuilds the text of everything; values stay. */
  function rebuild() {
    $('ranking').tBodies[0].textContent = '';
    $('provinces').tBodies[0].textContent = '';
    $('legend').textContent = '';
    S.hemi = null;
    $('hemicycle').textContent = '';
    schedule('all');
    if (S.drill) loadDrill(S.drill.id, true);
  }

  /* ---- the hemicycle: the same layout as lib/hemicycle.c ---- */

  var CX = 320, CY = 330, R_OUT = 300, R_IN = 300 * 0.36;

  function layout(n) {
    var rows, pitch, cap, i, r;
    for (rows = 1; rows < 400; rows++) {
      pitch = (R_OUT - R_IN) / rows;
      for (cap = 0, i = 0; i < rows; i++) cap += Math.floor(Math.PI * (R_IN + pitch * (i + 0.5)) / pitch);
      if (cap >= n) break;
    }
    var sum = 0, per = [], placed = 0, pos = [];
    for (i = 0; i < rows; i++) sum += R_IN + pitch * (i + 0.5);
    for (i = 0; i < rows; i++) { per[i] = Math.floor(n * (R_IN + pitch * (i + 0.5)) / sum); placed += per[i]; }
    for (i = rows; placed < n; i = i === 0 ? rows : i) { i--; per[i]++; placed++; }
    for (i = 0; i < rows; i++) {
      r = R_IN + pitch * (i + 0.5);
      for (var j = 0; j < per[i]; j++) {
        var a = per[i] === 1 ? Math.PI / 2 : Math.PI - Math.PI * j / (per[i] - 1);
        pos.push({ x: CX + r * Math.cos(a), y: CY - r * Math.sin(a), a: a });
      }
    }
    pos.sort(function (p, q) { return p.a !== q.a ? q.a - p.a : q.y - p.y; });
    return { pos: pos, dot: pitch * 0.42 };
  }

  function buildHemicycle(total, majority) {
    var box = $('hemicycle');
    var L = layout(total);
    var svg = document.createElementNS(SVGNS, 'svg');
    svg.setAttribute('viewBox', '0 0 640 350');
    svg.setAttribute('role', 'img');
    svg.innerHTML = '<defs><pattern id="hatch" width="4" height="4" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">' +
      '<rect width="4" height="4" style="fill:var(--card)"/><rect width="2" height="4" style="fill:var(--hatch)"/></pattern></defs>';
    var title = document.createElementNS(SVGNS, 'title');
    svg.appendChild(title);
    var g = document.createElementNS(SVGNS, 'g');
    var seats = [];
    /* In a right-to-left page the wedges run right to left, like the table. */
    var rtl = document.documentElement.dir === 'rtl';
    L.pos.forEach(function (p, k) {
      var c = document.createElementNS(SVGNS, 'circle');
      c.setAttribute('cx', (rtl ? 640 - p.x : p.x).toFixed(1));
      c.setAttribute('cy', p.y.toFixed(1));
      c.setAttribute('r', L.dot.toFixed(1));
      c.setAttribute('class', 'seat empty');
      c.setAttribute('data-coalition', '');
      c.setAttribute('data-i', k);
      g.appendChild(c);
      seats.push(c);
    });
    svg.appendChild(g);
    var line = document.createElementNS(SVGNS, 'line');
    line.setAttribute('class', 'majority');
    line.setAttribute('x1', CX); line.setAttribute('x2', CX);
    line.setAttribute('y1', CY - R_IN + 6); line.setAttribute('y2', CY - R_OUT - 4);
    svg.appendChild(line);
    var mt = document.createElementNS(SVGNS, 'text');
    mt.setAttribute('x', CX + 6); mt.setAttribute('y', 14);
    mt.setAttribute('font-size', '15');
    mt.textContent = t('majority') + ' ' + num(majority);
    svg.appendChild(mt);
    var big = document.createElementNS(SVGNS, 'text');
    big.setAttribute('x', CX); big.setAttribute('y', CY - 30);
    big.setAttribute('text-anchor', 'middle'); big.setAttribute('font-size', '34'); big.setAttribute('font-weight', '700');
    svg.appendChild(big);
    var small = document.createElementNS(SVGNS, 'text');
    small.setAttribute('x', CX); small.setAttribute('y', CY - 8);
    small.setAttribute('text-anchor', 'middle'); small.setAttribute('class', 'muted'); small.setAttribute('font-size', '14');
    small.textContent = t('of_seats', { n: num(total) });
    svg.appendChild(small);
    box.textContent = '';
    box.appendChild(svg);
    S.hemi = { seats: seats, owner: [], big: big, title: title, total: total };
  }

  function renderHemicycle(lb) {
    if (!S.hemi || S.hemi.total !== lb.seats.total) buildHemicycle(lb.seats.total, lb.seats.majority);
    var h = S.hemi, k = 0, owner = [];
    lb.coalitions.forEach(function (c) { for (var i = 0; i < c.seats; i++) owner[k++] = c.id; });
    for (var p = 0; p < lb.seats.pending; p++) owner[k++] = '#pending';
    while (k < lb.seats.total) owner[k++] = '';
    for (var i = 0; i < owner.length; i++) {
      if (h.owner[i] === owner[i]) continue;
      var s = h.seats[i], o = owner[i];
      if (o === '#pending') {
        s.setAttribute('class', 'seat pending');
        s.setAttribute('data-coalition', '');
        s.setAttribute('tabindex', '0');
        s.style.fill = '';
      } else if (o === '') {
        s.setAttribute('class', 'seat empty');
        s.setAttribute('data-coalition', '');
        s.removeAttribute('tabindex');
        s.style.fill = '';
      } else {
        s.setAttribute('class', 'seat');
        s.setAttribute('data-coalition', o);
        s.removeAttribute('tabindex');
        s.style.fill = coColor(o);
      }
    }
    h.owner = owner;
    setText(h.big, num(lb.seats.allocated));
    var label = lb.coalitions.filter(function (c) { return c.seats > 0; })
      .map(function (c) { return coShort(c.id) + ' ' + c.seats; }).join(', ');
    $('hemicycle').setAttribute('aria-label', t('parliament') + ': ' + (label || t('unallocated')));
    setText(h.title, label);
    renderLegend(lb);
  }

  function renderLegend(lb) {
    var ul = $('legend'), items = [];
    lb.coalitions.forEach(function (c) { if (c.seats > 0) items.push({ id: c.id, label: coShort(c.id), n: c.seats }); });
    if (lb.seats.pending > 0) items.push({ cls: 'pending', label: t('pending'), n: lb.seats.pending });
    var empty = lb.seats.total - lb.seats.allocated - lb.seats.pending;
    if (empty > 0) items.push({ cls: 'empty', label: t('unallocated'), n: empty });
    var key = items.map(function (x) { return (x.id || x.cls) + ':' + x.n; }).join('|');
    if (ul.getAttribute('data-key') === key) return;
    ul.setAttribute('data-key', key);
    ul.textContent = '';
    items.forEach(function (x) {
      var li = el('li');
      var sw = x.id ? swatch(x.id) : el('span', 'swatch ' + x.cls);
      sw.setAttribute('aria-hidden', 'true');
      li.appendChild(sw);
      li.appendChild(document.createTextNode(x.label + ' '));
      li.appendChild(el('b', '', num(x.n)));
      ul.appendChild(li);
    });
  }

  function seatTip(e) {
    var s = e.target.closest && e.target.closest('.seat');
    var tip = $('hemi-tip');
    if (!s) { tip.hidden = true; return; }
    var text;
    if (s.classList.contains('pending')) {
      var parts = Object.keys(S.pendingTies).map(function (pid) {
        var p = S.pendingTies[pid];
        return pvName(pid) + ': ' + p.map(function (x) {
          return t('tied', { n: x.seats, lists: x.tied.map(coShort).join(' / '), rule: x.rule === 'lot' ? t('lot') : t('by_votes') });
        }).join('; ');
      });
      text = t('pending') + (parts.length ? ' — ' + parts.join(' · ') : '');
    } else if (s.classList.contains('empty')) {
      text = t('unallocated');
    } else {
      var id = s.getAttribute('data-coalition');
      var row = S.lb && S.lb.coalitions.find(function (c) { return c.id === id; });
      text = coName(id) + (row ? ': ' + num(row.seats) + ' ' + t('seats_word') : '');
    }
    tip.textContent = text;
    tip.hidden = false;
    var box = s.closest('.card').getBoundingClientRect(), r = s.getBoundingClientRect();
    var x = r.left - box.left + r.width / 2, y = r.bottom - box.top + 6;
    tip.style.left = Math.max(4, Math.min(x - 60, box.width - 200)) + 'px';
    tip.style.top = y + 'px';
  }

  /* ---- headline and ranking ---- */

  function renderHeadline(lb) {
    var top = lb.coalitions[0], second = lb.coalitions[1];
    var p = $('headline-text');
    p.textContent = '';
    if (!top || (top.seats === 0 && top.votes === 0)) {
      p.textContent = t('waiting');
    } else {
      p.appendChild(swatch(top.id));
      var m = lb.seats.majority;
      var s = t('leads', { name: coShort(top.id), seats: num(top.seats) }) + ' — ' +
        (top.seats >= m ? t('has_majority', { m: num(m), t: num(lb.seats.total) }) :
          t('short_of', { n: num(m - top.seats), m: num(m), t: num(lb.seats.total) }));
      if (second) {
        var gap = top.seats - second.seats;
        s += '; ' + (gap > 0 ? t('ahead', { n: num(gap), name: coShort(second.id) }) : t('tied_with', { name: coShort(second.id) }));
      }
      p.appendChild(document.createTextNode(s));
    }
    var fill = $('bar-fill');
    fill.style.width = (100 * (top ? top.seats : 0) / lb.seats.total) + '%';
    fill.style.background = top ? coColor(top.id) : 'transparent';
    $('bar-line').style.insetInlineStart = (100 * lb.seats.majority / lb.seats.total) + '%';
    var counted = lb.votes.valid + lb.votes.invalid;
    setText($('stat-votes'), num(counted));
    setText($('stat-provinces'), num(lb.provinces.reporting) + ' / ' + num(lb.provinces.total));
    setText($('stat-final'), num(lb.provinces.final));
    renderStations();
    setText($('stat-seats'), num(lb.seats.allocated) + ' / ' + num(lb.seats.total) + (lb.seats.pending ? ' (+' + num(lb.seats.pending) + ' ' + t('pending') + ')' : ''));
    setText($('version'), String(lb.version));
    var u = $('updated');
    setText(u, when(lb.updated_at));
    if (lb.updated_at) u.setAttribute('datetime', lb.updated_at);
  }

  /*
   * Stations reporting, nationally: a percentage only when every province
   * sent station counts; otherwise the counts and which provinces they
   * cover (68.89 % of the stations of 5 provinces is not 68.89 % of the
   * country's).  From /v1/provinces, where each province says its own.
   */
  function renderStations() {
    var box = $('stat-stations-box'), dd = $('stat-stations');
    if (!S.provinces) { box.hidden = true; return; }
    var r = 0, tot = 0, with_ = [];
    S.provinces.forEach(function (p) {
      if (p.stations && p.stations.total) {
        r += p.stations.reporting; tot += p.stations.total; with_.push(p);
      }
    });
    box.hidden = !tot;
    if (!tot) return;
    var all = with_.length === S.provinces.length;
    setText(dd, all ? pct(Math.round(10000 * r / tot) / 100) + ' (' + t('stations_of', { r: num(r), t: num(tot) }) + ')' :
      t('stations_in', { r: num(r), t: num(tot), n: num(with_.length), m: num(S.provinces.length) }));
    dd.setAttribute('data-covers', all ? 'all' : with_.map(function (p) { return p.id; }).join(' '));
    dd.title = all ? '' : with_.map(function (p) { return pvName(p.id); }).join(', ');
  }

  function rankRow(c) {
    var tr = el('tr');
    tr.setAttribute('data-coalition', c.id);
    ['rank', 'name', 'votes', 'share', 'seats', 'change'].forEach(function (f) {
      var td = el(f === 'name' ? 'th' : 'td', f === 'name' ? 'name' : 'num');
      if (f === 'name') {
        td.setAttribute('scope', 'row');
        td.appendChild(swatch(c.id));
        td.appendChild(el('span', '', coShort(c.id)));
        if (coName(c.id) !== coShort(c.id)) td.appendChild(el('span', 'full', coName(c.id)));
      }
      td.setAttribute('data-field', f);
      tr.appendChild(td);
    });
    return tr;
  }

  function renderRanking(lb, prev) {
    var tbody = $('ranking').tBodies[0];
    var before = {};
    if (prev) prev.coalitions.forEach(function (c) { before[c.id] = c; });
    var rows = {};
    Array.prototype.forEach.call(tbody.rows, function (r) { rows[r.getAttribute('data-coalition')] = r; });
    var any = lb.coalitions.some(function (c) { return c.votes > 0 || c.seats > 0; });
    var list = lb.coalitions.filter(function (c) { return !any || c.votes > 0 || c.seats > 0; });
    var more = $('ranking-more');
    more.hidden = list.length <= RANK_ROWS;
    if (!more.hidden) more.textContent = S.showAll ? t('show_fewer') : t('show_all', { n: list.length });
    if (!S.showAll) list = list.slice(0, RANK_ROWS);
    var keep = {};
    list.forEach(function (c, i) {
      var tr = rows[c.id] || rankRow(c);
      keep[c.id] = true;
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
      var cells = tr.cells, b = before[c.id];
      setText(cells[0], num(c.rank));
      if (setText(cells[2], num(c.votes)) && prev) flash(cells[2]);
      setText(cells[3], pct(c.share));
      /* tied_for: pending seats it is tied for (they overlap between the
       * tied coalitions); seats_min/seats_max: what the uncounted ballots
       * can still change, where the daemon says. */
      var tied = c.tied_for !== undefined ? c.tied_for : c.pending;
      if (setText(cells[4], num(c.seats) + (tied ? ' (+' + num(tied) + '?)' : '')) && prev) flash(cells[4]);
      cells[4].title = c.seats_min !== undefined && c.seats_max !== undefined ? num(c.seats_min) + '–' + num(c.seats_max) : '';
      var d = b ? c.seats - b.seats : 0, dv = b ? c.votes - b.votes : 0;
      var ch = d !== 0 ? signed(d) : dv !== 0 ? '±0 (' + signed(dv) + ')' : '';
      setText(cells[5], ch);
      cells[5].className = 'num ' + (d > 0 ? 'up' : d < 0 ? 'down' : '');
      cells[5].title = b ? t('votes') + ' ' + signed(dv) : '';
    });
    Object.keys(rows).forEach(function (id) { if (!keep[id]) tbody.removeChild(rows[id]); });
  }

  /* ---- provinces ---- */

  var STATUS_ORDER = { none: 0, partial: 1, final: 2 };
  /*
   * How far a province's count is, from real counts only: its stations
   * reporting, or 1 once final, 0 before anything.  A partial count without
   * station counts is unknown (null): no bar is drawn rather than a guess.
   */
  function progressOf(p) {
    if (p.stations && p.stations.total) return p.stations.reporting / p.stations.total;
    if (p.status === 'final') return 1;
    return p.revision ? null : 0;
  }
  function sortKey(p) {
    switch (S.sort.key) {
      case 'leader': return p.leader ? coShort(p.leader.coalition) : '\uffff';
      case 'seats': return p.seats;
      case 'status': return STATUS_ORDER[p.status] || 0;
      case 'progress': var pr = progressOf(p); return pr === null ? -1 : pr;
      default: return pvName(p.id);
    }
  }
  function provRow(p) {
    var tr = el('tr');
    tr.setAttribute('data-province', p.id);
    var th = el('th', 'name');
    th.setAttribute('scope', 'row');
    var a = el('a', '', pvName(p.id));
    a.href = '#/provinces/' + encodeURIComponent(p.id);
    th.appendChild(a);
    tr.appendChild(th);
    tr.appendChild(el('td', 'leader'));
    tr.appendChild(el('td', 'num'));
    tr.appendChild(el('td', 'status'));
    var pc = el('td', 'progress-cell');
    var box = el('div', 'progress-box');
    var bar = el('span', 'progress');
    bar.setAttribute('aria-hidden', 'true');
    bar.appendChild(el('i'));
    box.appendChild(bar);
    box.appendChild(el('span', 'pct'));
    pc.appendChild(box);
    tr.appendChild(pc);
    return tr;
  }
  function renderProvinces() {
    var list = S.provinces;
    if (!list) return;
    var tbody = $('provinces').tBodies[0];
    var rows = {};
    Array.prototype.forEach.call(tbody.rows, function (r) { rows[r.getAttribute('data-province')] = r; });
    var sorted = list.slice().sort(function (a, b) {
      var x = sortKey(a), y = sortKey(b);
      var c = typeof x === 'string' ? x.localeCompare(y, S.lang) : x - y;
      return (c || a.id.localeCompare(b.id)) * S.sort.dir;
    });
    sorted.forEach(function (p, i) {
      var tr = rows[p.id] || provRow(p);
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] || null);
      var c = tr.cells;
      var lead = p.leader ? p.leader.coalition + ':' + p.leader.seats : '';
      if (tr.getAttribute('data-lead') !== lead) {
        tr.setAttribute('data-lead', lead);
        c[1].textContent = '';
        if (p.leader) {
          c[1].appendChild(swatch(p.leader.coalition));
          c[1].appendChild(document.createTextNode(coShort(p.leader.coalition) + ' (' + num(p.leader.seats) + ')'));
        } else c[1].textContent = '–';
        if (rows[p.id]) flash(c[1]);
      }
      setText(c[2], (p.revision ? num(p.allocated) + ' / ' : '') + num(p.seats) + (p.pending_seats ? ' (+' + num(p.pending_seats) + '?)' : ''));
      var status = p.status || 'none';
      if (setText(c[3], t(status) + (p.revision > 1 ? ' · r' + p.revision : ''))) {
        c[3].className = 'status status-' + status;
        if (rows[p.id]) flash(c[3]);
      }
      var pr = progressOf(p), box = c[4].firstChild;
      box.classList.toggle('unknown', pr === null);
      box.firstChild.firstChild.style.width = pr === null ? '0' : Math.round(pr * 100) + '%';
      setText(box.lastChild, pr === null ? '–' : p.stations && p.stations.total ? pct(Math.round(pr * 10000) / 100) : '');
      box.title = pr === null ? t('no_station_counts') : p.stations && p.stations.total ?
        t('stations_of', { r: num(p.stations.reporting), t: num(p.stations.total) }) : '';
    });
  }
  function setupSort() {
    var ths = $('provinces').tHead.rows[0].cells;
    Array.prototype.forEach.call(ths, function (th) {
      th.querySelector('button').addEventListener('click', function () {
        var k = th.getAttribute('data-sort');
        S.sort.dir = S.sort.key === k ? -S.sort.dir : (k === 'name' || k === 'leader' ? 1 : -1);
        S.sort.key = k;
        Array.prototype.forEach.call(ths, function (o) { o.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', S.sort.dir > 0 ? 'ascending' : 'descending');
        renderProvinces();
      });
    });
    ths[0].setAttribute('aria-sort', 'ascending');
  }

  /* ---- the ticker ---- */

  function seatMoves(from, to) {
    if (!from) return '';
    var b = {};
    from.coalitions.forEach(function (c) { b[c.id] = c.seats; });
    return to.coalitions.filter(function (c) { return c.seats !== (b[c.id] || 0); })
      .sort(function (x, y) { return (y.seats - (b[y.id] || 0)) - (x.seats - (b[x.id] || 0)); })
      .map(function (c) { return coShort(c.id) + ' ' + signed(c.seats - (b[c.id] || 0)); }).join(', ');
  }
  function tick(version, provs, lb) {
    var moves = seatMoves(S.tickLb, lb);
    S.tickLb = lb;
    var li = el('li');
    li.appendChild(el('span', 'v', 'v' + version + ' · ' + when(lb.updated_at) + ' · '));
    provs.forEach(function (p, i) {
      if (i) li.appendChild(document.createTextNode(', '));
      var a = el('a', '', pvName(p.id));
      a.href = '#/provinces/' + encodeURIComponent(p.id);
      li.appendChild(a);
      li.appendChild(document.createTextNode(' ' + t('revision') + ' ' + p.revision + (p.status ? ' (' + t(p.status) + ')' : '')));
      if (p.correction) li.appendChild(el('span', 'tag correction', t('correction')));
    });
    li.appendChild(document.createTextNode(' — ' + (moves || t('nothing_moved'))));
    li.setAttribute('data-version', version);
    addTick(li, lb.updated_at || '');
  }

  /*
   * The ticker, newest first: an entry goes where its time puts it, so
   * entries caught up from the history and live ones interleave right.
   */
  function addTick(li, at) {
    var ol = $('ticker'), before = null;
    li.setAttribute('data-at', at);
    for (var n = ol.firstChild; n; n = n.nextSibling)
      if ((n.getAttribute('data-at') || '') <= at) { before = n; break; }
    ol.insertBefore(li, before);
    while (ol.children.length > 40) ol.removeChild(ol.lastChild);
  }

  /*
   * Entries from a province's history (/v1/provinces/{id}/history): one
   * per revision after `after`, with what moved in that province's seats.
   * The ticker is seeded this way when the page opens after results came
   * in, and catches up this way after a reconnect or a gap in the versions,
   * so what happened meanwhile is listed one revision at a time.
   */
  function historyTicks(pid, after) {
    return getJSON(API + '/provinces/' + encodeURIComponent(pid) + '/history').then(function (h) {
      return (h && h.revisions || []).filter(function (r) { return r.revision > after; }).map(function (r) {
        return { pid: pid, r: r };
      });
    }).catch(function () { return []; });
  }
  function historyTick(x) {
    var r = x.r, li = el('li', 'from-history');
    li.setAttribute('data-province', x.pid);
    li.setAttribute('data-revision', r.revision);
    if (r.version !== undefined && r.version !== null) li.setAttribute('data-version', r.version);
    li.title = t('from_history');
    li.appendChild(el('span', 'v', when(r.received_at) + ' · '));
    var a = el('a', '', pvName(x.pid));
    a.href = '#/provinces/' + encodeURIComponent(x.pid);
    li.appendChild(a);
    li.appendChild(document.createTextNode(' ' + t('revision') + ' ' + r.revision + (r.status ? ' (' + t(r.status) + ')' : '')));
    if (Object.keys(r.changed || {}).some(function (k) { return r.changed[k] < 0; }))
      li.appendChild(el('span', 'tag correction', t('correction')));
    var by = {};
    Object.keys(r.seats_moved || {}).forEach(function (l) {
      var c = S.list2co[l] || l;
      by[c] = (by[c] || 0) + r.seats_moved[l];
    });
    var moves = Object.keys(by).filter(function (c) { return by[c]; })
      .sort(function (p, q) { return by[q] - by[p] || (p < q ? -1 : 1); })
      .map(function (c) { return coShort(c) + ' ' + signed(by[c]); }).join(', ');
    li.appendChild(document.createTextNode(' — ' + (moves || t('nothing_moved'))));
    addTick(li, r.received_at || '');
  }
  /* Provinces (id: revision after which to list) into the ticker; at most
   * the 20 most recent, and of their revisions only those newer than the
   * latest of any province left out, so the list has no hole. */
  function catchUp(want) {
    var ids = Object.keys(want).sort(function (a, b) {
      var x = provAt(a), y = provAt(b);
      return x < y ? 1 : x > y ? -1 : 0;
    });
    var cutoff = ids.length > 20 ? provAt(ids[20]) : '';
    return Promise.all(ids.slice(0, 20).map(function (id) { return historyTicks(id, want[id]); })).then(function (lists) {
      var all = [].concat.apply([], lists).filter(function (x) { return (x.r.received_at || '') >= cutoff; });
      /* received_at has whole seconds and the histories no version: in
       * the same second, a later revision is taken as the later event. */
      all.sort(function (a, b) {
        var x = a.r.received_at || '', y = b.r.received_at || '';
        return x < y ? -1 : x > y ? 1 : a.r.revision - b.r.revision;
      });
      all.slice(-40).forEach(historyTick);
      return all.length;
    });
  }
  /*
   * The ticker from the national changes feed (/v1/changes?since=V): every
   * province revision after version `since` up to `upto`, in version order,
   * in one request; each row says its version, so revisions of the same
   * second keep their true order.  A daemon without the feed, or whose
   * history cannot answer for `since` (410), is caught up from the
   * provinces' histories as before (`want`).
   */
  function catchUpChanges(since, upto, want) {
    return fetch(API + '/changes?since=' + since, { cache: 'no-store' }).then(function (r) {
      if (!r.ok) throw new Error('changes: ' + r.status);
      return r.json();
    }).then(function (c) {
      var rows = c.changes.filter(function (x) { return x.version !== null && x.version <= upto; });
      rows.slice(-40).forEach(function (x) { historyTick({ pid: x.province, r: x }); });
      return rows.length;
    }).catch(function () { return catchUp(want); });
  }
  function provAt(id) {
    var p = (S.provinces || []).find(function (x) { return x.id === id; });
    return p && p.received_at || '';
  }

  /* ---- fetching ---- */

  function getJSON(url, etagKey) {
    var h = {};
    if (etagKey && S[etagKey]) h['If-None-Match'] = S[etagKey];
    return fetch(url, { headers: h, cache: 'no-store' }).then(function (r) {
      if (r.status === 304) return null;
      if (!r.ok) throw new Error(url + ': ' + r.status);
      if (etagKey) S[etagKey] = r.headers.get('ETag');
      return r.json();
    });
  }

  /* /v1/provinces: one request at a time; changes meanwhile ask for one more. */
  function loadProvinces() {
    if (S.provBusy) { S.provAgain = true; return; }
    S.provBusy = true;
    getJSON(API + '/provinces', 'provEtag').then(function (j) {
      if (j) {
        var old = {}, first = !S.provinces, gap = S.provVersion !== undefined && j.version > S.provVersion + 1;
        (S.provinces || []).forEach(function (p) { old[p.id] = p; });
        var from = S.provVersion;
        S.provVersion = j.version;
        if (first || gap || S.resync) {
          /* Opened late, a reconnect, or versions went by unseen: the
           * ticker takes what happened from the changes feed. */
          var want = {};
          j.provinces.forEach(function (p) {
            var o = old[p.id] ? old[p.id].revision : 0;
            if (p.revision > o) want[p.id] = o;
          });
          var resync = S.resync;
          S.resync = false;
          S.provinces = j.provinces;
          /* The next live entry's seat moves count from here. */
          S.tickLb = S.lbs[j.version] || S.lb || S.tickLb;
          /* Opened late: the last 40 versions; else what went by unseen. */
          var since = from === undefined ? Math.max(0, j.version - 40) : from;
          catchUpChanges(since, j.version, want).then(function () {
            if (!resync || from === undefined) return;
            var li = el('li', 'resync', t('resynced', { a: num(from + 1), b: num(j.version) }));
            li.setAttribute('role', 'status');
            /* Above what it caught up, whatever the two clocks say. */
            var top = $('ticker').firstChild, now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
            var at = top && top.getAttribute('data-at') > now ? top.getAttribute('data-at') : now;
            addTick(li, at);
          });
        } else if (S.provinces !== j.provinces && Object.keys(old).length && S.lb) {
          /* A correction is a newer revision that lowers the count. */
          var ch = j.provinces.filter(function (p) { return old[p.id] && old[p.id].revision !== p.revision; })
            .map(function (p) {
              return { id: p.id, revision: p.revision, status: p.status,
                correction: old[p.id].revision > 0 && totalVotes(p) < totalVotes(old[p.id]) };
            });
          if (ch.length) tick(j.version, ch, S.lbs[j.version] || S.lb);
        }
        S.provinces = j.provinces;
        refreshTies();
        schedule('provinces');
        /* Conditional: a province's views keep their tag while others change. */
        if (S.drill) loadDrill(S.drill.id);
      }
    }).catch(function () {}).then(function () {
      S.provBusy = false;
      if (S.provAgain) { S.provAgain = false; loadProvinces(); }
    });
  }
  function totalVotes(p) { return p.votes ? p.votes.valid + p.votes.invalid : 0; }

  /* The tied lists of every province with pending seats (hover on a pending seat). */
  function refreshTies() {
    var want = {};
    S.provinces.forEach(function (p) { if (p.pending_seats > 0) want[p.id] = p.revision; });
    Object.keys(S.pendingTies).forEach(function (id) { if (!want[id]) delete S.pendingTies[id]; });
    Object.keys(want).forEach(function (id) {
      if (S.pendingTies[id] && S.pendingTies[id].rev === want[id]) return;
      getJSON(API + '/provinces/' + encodeURIComponent(id)).then(function (d) {
        if (!d) return;
        d.pending.rev = d.revision;
        S.pendingTies[id] = d.pending;
      }).catch(function () {});
    });
  }

  /*
   * Versions only grow, so an older one is a late duplicate -- except on a
   * new connection (`fresh`): a daemon whose data dir was reset starts
   * again from 0, and the page follows it.
   */
  function onLeaderboard(lb, fresh) {
    if (S.lb && lb.version <= S.lb.version && !(fresh && lb.version !== S.lb.version)) return;
    if (!S.lb) S.tickLb = lb;
    S.prevLb = S.lb;
    S.lb = lb;
    /* Recent versions, so the ticker can name what moved at each. */
    S.lbs[lb.version] = lb;
    var keys = Object.keys(S.lbs);
    if (keys.length > 64) keys.forEach(function (v) { if (v < lb.version - 64 || v > lb.version) delete S.lbs[v]; });
    schedule('lb');
  }

  /* The tile map (/v1/map.svg), drawn by tallyd: fetched again (revalidated
     by its ETag) when the leaderboard moves, one request at a time. */
  function renderMap() {
    var el = document.getElementById('map');
    if (!el || S.mapBusy) { S.mapAgain = !!el; return; }
    S.mapBusy = true;
    fetch(API + '/map.svg', { cache: 'no-cache' }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (t) {
      if (t) { el.innerHTML = t.replace(/^<\?xml[^>]*>\s*/, ''); localizeMap(el.querySelector('svg')); }
    }).catch(function () {}).then(function () {
      S.mapBusy = false;
      if (S.mapAgain) { S.mapAgain = false; renderMap(); }
    });
  }

  /* tallyd draws the map in the definition's own words; in another
     language the page relabels it from the data attributes it carries
     (province and coalition ids) and the numbers in its English text. */
  function localizeMap(svg) {
    if (!svg || S.lang === 'en' || !S.election) return;
    var kids = svg.children, i, m;
    var at = 'title', name = named(S.election);
    for (i = 0; i < kids.length; i++) {
      var k = kids[i];
      if (k.tagName === 'title') {
        k.textContent = name + ': ' + t(svg.getAttribute('data-by') === 'seats' ? 'map_seats' : 'map_first');
      } else if (k.tagName === 'text' && at === 'title') {
        k.textContent = name; at = 'sub';
      } else if (k.tagName === 'text' && at === 'sub') {
        m = /(\d+)\D+(\d+)\D+(\d+)/.exec(k.textContent);
        if (m) k.textContent = t('map_sub', { v: num(+m[1]), r: num(+m[2]), t: num(+m[3]) });
        at = 'done';
      }
    }
    svg.querySelectorAll('g.tile').forEach(function (g) {
      var r = g.querySelector('rect.province'), id = r && r.getAttribute('data-province');
      if (!id) return;
      var first = r.getAttribute('data-first'), pv = S.pv[id], tt = r.querySelector('title');
      if (tt) tt.textContent = pvName(id) + ': ' + (first ? t('map_first_is', { name: coShort(first) }) : t('none')) +
        ' · ' + num(pv ? pv.seats : 0) + ' ' + t('seats_word');
      g.querySelectorAll('rect.seats').forEach(function (b) {
        var bt = b.querySelector('title'), n = bt && /(\d+)$/.exec(bt.textContent);
        if (bt && n) bt.textContent = coShort(b.getAttribute('data-coalition')) + ': ' + num(+n[1]);
      });
      var tx = g.querySelectorAll('text');
      /* The tile's label: the first word of its name, as much as fits. */
      if (tx[0]) tx[0].textContent = pvName(id).split(/\s+/)[0].slice(0, 6);
      if (tx[1]) tx[1].textContent = num(pv ? pv.seats : +tx[1].textContent);
    });
    svg.querySelectorAll('g.legend rect[data-coalition]').forEach(function (r) {
      var tx = r.nextElementSibling, id = r.getAttribute('data-coalition');
      if (tx && tx.tagName === 'text') tx.textContent = id ? coShort(id) : t('none');
    });
  }

  function schedule(what) {
    S.dirty[what] = true;
    if (S.frame) return;
    S.frame = requestAnimationFrame(function () {
      var t0 = performance.now();
      S.frame = 0;
      var d = S.dirty;
      S.dirty = {};
      if (S.lb && (d.lb || d.all)) {
        renderHeadline(S.lb);
        renderHemicycle(S.lb);
        renderRanking(S.lb, S.prevLb);
        renderMap();
      }
      if (d.provinces || d.all) { renderProvinces(); renderStations(); }
      /* For measurements (bench/page): the first complete render. */
      if (!S.rendered && S.lb && S.provinces && window.performance && performance.mark) {
        S.rendered = true;
        performance.mark('tallyd-first-render');
      }
      /* What rendering costs, for bench/page: count, total and worst ms. */
      var dt = performance.now() - t0, st = window.tallydRenderStats;
      st.n++; st.total += dt; if (dt > st.max) st.max = dt;
    });
  }

  function setConn(mode) {
    S.mode = mode;
    var c = $('conn');
    c.setAttribute('data-state', mode === 'reconnecting' ? 'connecting' : mode);
    setText($('conn-text'), t(mode));
  }

  /* SSE first; on 404 or a stream that never opens, conditional polling. */
  function connect() {
    if (!window.EventSource || /[?&]poll=1/.test(location.search)) return poll();
    var es = new EventSource(API + '/events'), opened = false, fresh = true;
    var giveUp = setTimeout(function () { if (!opened) { es.close(); poll(); } }, 4000);
    es.onopen = function () { opened = true; fresh = true; clearTimeout(giveUp); setConn('live'); };
    /*
     * `change` names the provinces of a version; the ticker takes them
     * from /v1/provinces, which the next `leaderboard` asks for anyway
     * (one request at a time, however fast versions come).
     */
    /*
     * The daemon keeps no events between versions: a reconnect whose
     * Last-Event-ID is not the current version gets a `snapshot`.  Having
     * shown an older version, the page then replays what it missed from
     * /v1/changes?since=<the version it showed> and says so in the ticker.
     */
    es.addEventListener('snapshot', function (e) {
      var v;
      try { v = JSON.parse(e.data).version; } catch (x) { return; }
      if (S.lb && v !== S.lb.version) S.resync = true;
    });
    es.addEventListener('leaderboard', function (e) {
      var lb;
      try { lb = JSON.parse(e.data); } catch (x) { return; }
      onLeaderboard(lb, fresh);
      fresh = false;
      loadProvinces();
    });
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) {
        clearTimeout(giveUp);
        if (!opened) poll(); else { setConn('offline'); setTimeout(connect, 3000); }
      } else setConn('reconnecting');
    };
  }

  function poll() {
    setConn('polling');
    var fails = 0;
    function once() {
      var started = Date.now();
      getJSON(API + '/leaderboard?wait=25', 'lbEtag').then(function (lb) {
        /* Back after failures: whatever went by is caught up, visibly. */
        if (fails && lb && S.lb && lb.version !== S.lb.version) S.resync = true;
        fails = 0;
        setConn('polling');
        if (lb) {
          /* Polling only hears of a new tag: whatever it says is current. */
          onLeaderboard(lb, true);
          loadProvinces();
        }
        /* A daemon without long-poll answers at once: then poll each second. */
        setTimeout(once, Date.now() - started < 900 ? 1000 - (Date.now() - started) : 0);
      }).catch(function () {
        fails++;
        setConn('offline');
        setTimeout(once, Math.min(10000, 1000 * fails));
      });
    }
    once();
  }

  /* ---- the drill-down: #/provinces/{id} ---- */

  function route() {
    var m = /^#\/provinces\/(.+)$/.exec(location.hash);
    var id = m ? decodeURIComponent(m[1]) : null;
    $('overview').hidden = !!id;
    $('drill').hidden = !id;
    if (!id) {
      var back = S.drill && document.querySelector('#provinces tr[data-province="' + CSS.escape(S.drill.id) + '"] a');
      S.drill = null;
      if (back) back.focus();
      return;
    }
    S.drill = { id: id, revision: -1 };
    $('drill-title').textContent = pvName(id);
    $('drill-title').focus();
    loadDrill(id, true);
  }

  function loadDrill(id, fresh) {
    var base = API + '/provinces/' + encodeURIComponent(id);
    if (fresh) { S.drillEtagD = null; S.drillEtagH = null; }
    Promise.all([
      getJSON(base + '?explain=1', 'drillEtagD'),
      getJSON(base + '/history', 'drillEtagH')
    ]).then(function (r) {
      if (!S.drill || S.drill.id !== id) return;
      if (r[0]) { S.drillDetail = r[0]; S.drill.revision = r[0].revision; }
      if (r[1]) S.drillHistory = r[1];
      /* Both 304: nothing to redraw. */
      if (r[0] || r[1]) renderDrill();
    }).catch(function () {
      if (!S.pv[id]) setText($('drill-meta'), t('unknown_province'));
    });
  }

  function renderDrill() {
    var d = S.drillDetail, h = S.drillHistory;
    if (!d || !S.drill || d.id !== S.drill.id) return;
    setText($('drill-title'), pvName(d.id));
    var meta = num(d.seats) + ' ' + t('seats_word') + ' · ' + t(d.status || 'none');
    if (d.revision) meta += ' · ' + t('revision') + ' ' + d.revision + ' · ' + t('received') + ' ' + when(d.received_at);
    if (d.reported_at) meta += ' · ' + t('reported') + ' ' + when(d.reported_at);
    if (d.stations && d.stations.total) meta += ' · ' + t('stations') + ' ' + t('stations_of', { r: num(d.stations.reporting), t: num(d.stations.total) });
    if (d.votes) meta += ' · ' + t('votes') + ' ' + num(d.votes.valid);
    setText($('drill-meta'), meta);
    var pend = $('drill-pending');
    pend.textContent = '';
    (d.pending || []).forEach(function (p) {
      var box = el('p', 'pending-box');
      box.appendChild(el('span', 'swatch pending'));
      box.appendChild(document.createTextNode(t('tied', { n: num(p.seats), lists: p.tied.map(function (l) { return listName(d, l); }).join(' / '), rule: p.rule === 'lot' ? t('lot') : t('by_votes') })));
      pend.appendChild(box);
    });
    var tbody = $('drill-lists').tBodies[0];
    var frag = document.createDocumentFragment();
    d.lists.forEach(function (l) {
      var tr = el('tr');
      tr.setAttribute('data-list', l.id);
      var th = el('th', 'name');
      th.setAttribute('scope', 'row');
      th.appendChild(swatch(l.coalition));
      th.appendChild(document.createTextNode(coName(l.coalition) + (l.id !== l.coalition ? ' (' + l.id + ')' : '')));
      tr.appendChild(th);
      [num(l.votes), pct(l.share), num(l.seats)].forEach(function (v) { tr.appendChild(el('td', 'num', v)); });
      var th2 = el('td', '', t(l.threshold) + (l.threshold_percent ? ' (' + percent(tf, Number(l.threshold_percent)) + ')' : ''));
      if (l.threshold_reason) th2.title = l.threshold_reason;
      tr.appendChild(th2);
      var nx = el('td', 'num', num(l.next_seat_votes));
      nx.setAttribute('data-field', 'next_seat_votes');
      tr.appendChild(nx);
      var mg = el('td', 'num', num(l.last_seat_margin));
      mg.setAttribute('data-field', 'last_seat_margin');
      tr.appendChild(mg);
      frag.appendChild(tr);
    });
    tbody.textContent = '';
    tbody.appendChild(frag);
    var steps = $('drill-steps');
    steps.textContent = '';
    (d.steps || []).forEach(function (s) {
      var li = el('li');
      li.appendChild(swatch(coalitionOfList(d, s.list)));
      var q = s.quotient || s.remainder;
      li.appendChild(document.createTextNode(listName(d, s.list) + (q ? ' — ' + num(Math.round(q.value * 100) / 100) + ' (' + q.exact + ')' : '') + (s.remainder ? ' · ' + t('remainder') : '')));
      steps.appendChild(li);
    });
    var ol = $('drill-history');
    ol.textContent = '';
    if (!h || !h.revisions.length) { ol.appendChild(el('li', '', t('no_history'))); return; }
    h.revisions.slice().reverse().forEach(function (r) {
      var neg = Object.keys(r.changed || {}).some(function (k) { return r.changed[k] < 0; });
      var li = el('li', neg ? 'correction' : '');
      li.setAttribute('data-revision', r.revision);
      var head = el('div');
      head.appendChild(el('b', '', t('revision') + ' ' + r.revision));
      head.appendChild(document.createTextNode(' · ' + t(r.status || 'partial') + ' · ' + t('received') + ' ' + when(r.received_at)));
      if (neg) head.appendChild(el('span', 'tag correction', t('correction')));
      li.appendChild(head);
      if (r.note) li.appendChild(el('div', 'note', t('note') + ': ' + r.note));
      var ch = Object.keys(r.changed || {}).filter(function (k) { return r.changed[k] !== 0; })
        .sort(function (a, b) { return Math.abs(r.changed[b]) - Math.abs(r.changed[a]); });
      if (r.revision > h.revisions[0].revision && ch.length)
        li.appendChild(el('div', 'changed', t('changed') + ': ' + ch.map(function (k) { return listName(d, k) + ' ' + signed(r.changed[k]); }).join(', ')));
      ol.appendChild(li);
    });
  }
  function coalitionOfList(d, list) {
    var l = d.lists.find(function (x) { return x.id === list; });
    return l ? l.coalition : list;
  }
  function listName(d, list) { return coShort(coalitionOfList(d, list)); }

  /* ---- the signed results log (docs/VERIFY.md) ---- */

  /* The checkpoint's size and root, every 10 s: a checkpoint is signed
     at most once per size, whoever asks.  Hidden when the log is off. */
  function loadLog() {
    fetch('/log/checkpoint', { cache: 'no-store' }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (text) {
      var lines = text ? text.split('\n') : [];
      if (lines.length < 4 || !/^[0-9]+$/.test(lines[1])) return;
      setText($('log-size'), num(Number(lines[1])));
      setText($('log-root'), lines[2]);
      $('log').hidden = false;
    }).catch(function () {});
  }

  /* ---- the night: every contest of the daemon, a card each ---- */

  /*
   * With more than one contest (GET /v1/contests), / is the night: a card
   * per contest with what the list says (seats, provinces reporting and
   * final, leader, majority), each opening the usual view of that contest
   * (?contest=ID, which reads /v1/contests/ID/...).  Live: nightLive.
   */
  function night(list) {
    S.night = true;
    /* The title in the page's language (chosen by setupLang). */
    S.election = { name: '', names: {}, coalitions: [], provinces: [] };
    Object.keys(T).concat(['en']).forEach(function (l) {
      S.election.names[l] = (T[l] && T[l].night_title) || EN.night_title;
    });
    setupLang();
    $('overview').hidden = true;
    $('drill').hidden = true;
    $('night').hidden = false;
    $('updated-box').hidden = true;
    $('foot-links').hidden = true;
    $('foot-contests').hidden = false;
    if (CONTEST) {
      var miss = $('night-missing');
      miss.hidden = false;
      setText(miss, t('no_contest', { id: CONTEST }));
    }
    renderNight(list);
    nightLive(list.contests.map(function (c) { return c.id; }));
  }

  /*
   * Every contest of the night on one event stream (/v1/events?contests=
   * a,b: each event names its contest; the browser resumes each with the
   * last id it got); at a leaderboard of any of them the list is read again
   * (one request at a time, If-None-Match: a 304 when nothing moved).
   * Without EventSource, past the 16 contests one stream follows, or when
   * the stream does not open: the list's long-poll (?wait=25 with its ETag).
   */
  function nightLive(ids) {
    var busy = false, again = false;
    function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      getJSON('/v1/contests', 'nightEtag').then(function (l) { if (l) renderNight(l); })
        .catch(function () {}).then(function () {
          busy = false;
          if (again) { again = false; refresh(); }
        });
    }
    if (!window.EventSource || /[?&]poll=1/.test(location.search) || ids.length > 16) return nightPoll();
    var es = new EventSource('/v1/events?contests=' + ids.map(encodeURIComponent).join(',')), opened = false;
    var giveUp = setTimeout(function () { if (!opened) { es.close(); nightPoll(); } }, 4000);
    es.onopen = function () { opened = true; clearTimeout(giveUp); setConn('live'); };
    es.addEventListener('leaderboard', refresh);
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) {
        clearTimeout(giveUp);
        if (!opened) nightPoll(); else { setConn('offline'); setTimeout(function () { nightLive(ids); }, 3000); }
      } else setConn('reconnecting');
    };
  }

  function nightPoll() {
    setConn('polling');
    var fails = 0;
    function once() {
      var started = Date.now();
      getJSON('/v1/contests?wait=25', 'nightEtag').then(function (l) {
        fails = 0;
        setConn('polling');
        if (l) renderNight(l);
        /* A daemon without long-poll answers at once: then each second. */
        setTimeout(once, Date.now() - started < 900 ? 1000 - (Date.now() - started) : 0);
      }).catch(function () {
        fails++;
        setConn('offline');
        setTimeout(once, Math.min(10000, 1000 * fails));
      });
    }
    once();
  }

  function contestHref(id) {
    var u = new URLSearchParams();
    u.set('contest', id);
    if (S.lang !== 'en') u.set('lang', S.lang);
    return location.pathname + '?' + u.toString();
  }

  function renderNight(list) {
    var ul = $('contests');
    list.contests.forEach(function (c) {
      var li = ul.querySelector('li[data-contest="' + CSS.escape(c.id) + '"]');
      if (!li) {
        li = el('li', 'contest-card');
        li.setAttribute('data-contest', c.id);
        var a = el('a', 'contest-link');
        a.href = contestHref(c.id);
        a.appendChild(el('h3', 'contest-name'));
        var dl = el('dl', 'contest-stats');
        ['seats', 'provinces_reporting', 'provinces_final', 'leader'].forEach(function (k) {
          var d = el('div');
          d.appendChild(el('dt', '', t(k)));
          var dd = el('dd');
          dd.setAttribute('data-field', k);
          d.appendChild(dd);
          dl.appendChild(d);
        });
        a.appendChild(dl);
        var m = el('p', 'contest-majority');
        m.setAttribute('data-field', 'majority');
        a.appendChild(m);
        var v = el('p', 'contest-version');
        v.setAttribute('data-field', 'version');
        a.appendChild(v);
        li.appendChild(a);
        ul.appendChild(li);
      }
      var f = function (k) { return li.querySelector('[data-field="' + k + '"]'); };
      setText(li.querySelector('.contest-name'), c.name);
      setText(f('seats'), num(c.seats.total) + ' · ' + t('majority') + ' ' + num(c.seats.majority));
      setText(f('provinces_reporting'), t('stations_of', { r: num(c.provinces.reporting), t: num(c.provinces.total) }));
      setText(f('provinces_final'), num(c.provinces.final));
      var had = f('leader').textContent !== '';
      if (setText(f('leader'), c.leader ? (c.leader.short || c.leader.id) + ' · ' + num(c.leader.seats) + ' ' +
          t('seats_word') + ' · ' + num(c.leader.votes) + ' ' + t('votes_word') : t('none')) && had) flash(f('leader'));
      var by = c.majority.coalition;
      var leaderName = c.leader && c.leader.id === by ? (c.leader.short || by) : by;
      li.setAttribute('data-majority', c.majority.status);
      setText(f('majority'), c.majority.status === 'clinched' ? t('majority_clinched', { name: leaderName }) :
        c.majority.status === 'hung' ? t('majority_hung') : t('majority_open'));
      setText(f('version'), t('version') + ' ' + num(c.version) + (c.updated_at ? ' · ' + when(c.updated_at) : ''));
    });
  }

  /* ---- start ---- */

  /*
   * The list of contests and the definition at once (a one-contest
   * daemon, or one without /v1/contests, gets today's view, one request
   * no later): the night with several contests and no ?contest=.
   */
  function start() {
    var contests = getJSON('/v1/contests').catch(function () { return null; });
    Promise.all([contests, getJSON(API + '/election').catch(function (x) { return contests.then(function (l) {
      /* ?contest= names no contest: the night, saying so. */
      if (CONTEST && l && l.contests) return { missing: true };
      throw x;
    }); })]).then(function (r) {
      var list = r[0], e = r[1];
      if (list && list.contests && ((list.contests.length > 1 && !CONTEST) || e.missing)) return night(list);
      if (CONTEST && list && list.contests && list.contests.length > 1) {
        $('night-link').hidden = false;
        $('night-link').href = location.pathname + (new URLSearchParams(location.search).get('lang') ? '?lang=' + encodeURIComponent(new URLSearchParams(location.search).get('lang')) : '');
      }
      if (CONTEST) {
        /* The footer's links are the contest's. */
        document.querySelectorAll('#foot-links a[href^="/v1/"]').forEach(function (a) {
          a.setAttribute('href', API + a.getAttribute('href').slice(3));
        });
      }
      S.election = e;
      S.list2co = {};
      e.coalitions.forEach(function (c, i) {
        c.index = i;
        S.co[c.id] = c;
        S.list2co[c.id] = c.id;
        (c.aliases || []).forEach(function (a) { S.list2co[a] = c.id; });
      });
      e.provinces.forEach(function (p) { S.pv[p.id] = p; });
      setupLang();
      setupSort();
      $('ranking-more').addEventListener('click', function () { S.showAll = !S.showAll; schedule('lb'); });
      var hb = $('hemicycle');
      ['mouseover', 'focusin'].forEach(function (ev) { hb.addEventListener(ev, seatTip); });
      ['mouseleave', 'focusout'].forEach(function (ev) { hb.addEventListener(ev, function () { $('hemi-tip').hidden = true; }); });
      window.addEventListener('hashchange', route);
      if (location.hash) route();
      connect();
      /* The signed log holds the first contest's versions (docs/VERIFY.md). */
      if (!CONTEST || (list && list['default'] === CONTEST)) {
        loadLog();
        setInterval(loadLog, 10000);
      }
    }).catch(function () {
      setConn('offline');
      setTimeout(start, 3000);
    });
  }
  start();
})();
