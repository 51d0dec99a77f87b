/* els-console: what every page shares. No page puts data into the DOM as markup: every string
 * that came from the server (and so possibly from an agent: host names, permit ids, certificate
 * names) becomes a text node. There is no inline script (the CSP forbids it); each page's own
 * file calls ELS.page(name, start) and start(me) runs once the principal is known. */
'use strict';

const ELS = (() => {
	const PAGES = [
		['fleet', 'Fleet'], ['drift', 'Drift'], ['policies', 'Policies'],
		['registry', 'Registry'], ['traffic', 'Traffic'], ['audit', 'Audit'],
	];

	/* el('td', {class: 'x'}, 'text', node, ...): strings become text nodes, never markup. */
	function el(tag, attrs, ...children) {
		const e = document.createElement(tag);
		for (const [k, v] of Object.entries(attrs || {})) {
			if (v === undefined || v === null || v === false) continue;
			if (k === 'class') e.className = v;
			else if (k === 'text') e.textContent = String(v);
			else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
			else if (k === 'dataset') Object.assign(e.dataset, v);
			else e.setAttribute(k, v === true ? '' : String(v));
		}
		for (const c of children.flat()) {
			if (c === undefined || c === null || c === false) continue;
			e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
		}
		return e;
	}

	function clear(node) {
		while (node.firstChild) node.removeChild(node.firstChild);
		return node;
	}

	function cookie(name) {
		for (const part of document.cookie.split(';')) {
			const [k, ...v] = part.trim().split('=');
			if (k === name) return decodeURIComponent(v.join('='));
		}
		return '';
	}

	class HttpError extends Error {
		constructor(status, message) {
			super(message);
			this.status = status;
		}
	}

	async function answer(r) {
		const type = r.headers.get('Content-Type') || '';
		const body = type.startsWith('application/json') ? await r.json() : { error: await r.text() };
		if (!r.ok) throw new HttpError(r.status, (body && (body.message || body.error)) || r.statusText);
		return body;
	}

	async function get(url) {
		return answer(await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } }));
	}

	/* State-changing requests carry the double-submit token: the els_csrf cookie's value. */
	async function post(url, body) {
		return answer(await fetch(url, {
			method: 'POST',
			credentials: 'same-origin',
			headers: { 'Content-Type': 'application/json', 'X-ELS-CSRF': cookie('els_csrf') },
			body: JSON.stringify(body || {}),
		}));
	}

	/* One table: columns [{key, label, cell(row) -> string|Node, class(row)}], rows objects. */
	function table(columns, rows, attrs) {
		const head = el('tr', null, columns.map((c) => el('th', { scope: 'col' }, c.label)));
		const frag = document.createDocumentFragment();
		for (const row of rows) {
			const tr = document.createElement('tr');
			for (const c of columns) {
				const v = c.cell ? c.cell(row) : row[c.key];
				const td = document.createElement('td');
				if (v instanceof Node) td.appendChild(v);
				else if (v !== undefined && v !== null) td.textContent = String(v);
				const cls = c.class ? c.class(row) : c.cls;
				if (cls) td.className = cls;
				tr.appendChild(td);
			}
			frag.appendChild(tr);
		}
		const tbody = el('tbody');
		tbody.appendChild(frag);
		return el('table', attrs || {}, el('thead', null, head), tbody);
	}

	/* The same for thousands of rows (the fleet): a grid of divs with table roles, in chunks of
	 * 250 rows that the browser lays out only when they scroll into view (content-visibility),
	 * so 10,000 agents cost one screen of layout. Every row stays in the DOM (searchable with
	 * the browser's find, countable by tests). columns also give width (CSS grid track). */
	function bigTable(columns, rows, attrs) {
		const tracks = columns.map((c) => c.width || 'minmax(0, 1fr)').join(' ');
		const root = el('div', Object.assign({ role: 'table', class: 'bigtable' }, attrs || {}));
		const head = el('div', { role: 'row', class: 'bt-row bt-head' }, columns.map((c) => el('span', { role: 'columnheader' }, c.label)));
		head.style.gridTemplateColumns = tracks;
		root.appendChild(head);
		let chunk = null;
		rows.forEach((row, i) => {
			if (i % 250 === 0) {
				chunk = el('div', { role: 'rowgroup', class: 'bt-chunk' });
				chunk.style.gridTemplateColumns = tracks;
				root.appendChild(chunk);
			}
			const tr = document.createElement('div');
			tr.className = 'bt-row';
			tr.setAttribute('role', 'row');
			for (const c of columns) {
				const v = c.cell ? c.cell(row) : row[c.key];
				const td = document.createElement('span');
				td.setAttribute('role', 'cell');
				if (v instanceof Node) td.appendChild(v);
				else if (v !== undefined && v !== null) td.textContent = String(v);
				const cls = c.class ? c.class(row) : c.cls;
				if (cls) td.className = cls;
				tr.appendChild(td);
			}
			chunk.appendChild(tr);
		});
		return root;
	}

	function when(iso) {
		if (!iso) return '—';
		const d = new Date(iso);
		if (isNaN(d)) return String(iso);
		return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z').replace(/:00Z$/, 'Z');
	}

	function ago(iso) {
		if (!iso) return 'never';
		const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
		if (isNaN(s)) return String(iso);
		if (s < 60) return `${Math.max(s, 0)} s ago`;
		if (s < 3600) return `${Math.round(s / 60)} min ago`;
		if (s < 86400) return `${Math.round(s / 3600)} h ago`;
		return `${Math.round(s / 86400)} d ago`;
	}

	function badge(text, kind) {
		return el('span', { class: `badge ${kind || text}` }, text);
	}

	function param(name) {
		return new URLSearchParams(location.search).get(name);
	}

	function status(message, kind) {
		const box = document.getElementById('status');
		if (!box) return;
		clear(box);
		if (message) box.appendChild(el('p', { class: kind || 'error', role: 'alert' }, message));
	}

	function errorText(e) {
		return e instanceof HttpError ? `${e.status}: ${e.message}` : String(e && e.message ? e.message : e);
	}

	function nav(active, me) {
		const header = document.getElementById('nav');
		clear(header);
		header.appendChild(el('a', { class: 'brand', href: '/fleet' }, 'els-console'));
		const ul = el('ul');
		for (const [id, label] of PAGES)
			ul.appendChild(el('li', null, el('a', { href: `/${id}`, class: id === active ? 'active' : null }, label)));
		header.appendChild(ul);
		header.appendChild(el('span', { class: 'who', id: 'who' }, me ? `${me.identity} (${me.role})` : ''));
	}

	/* Runs the page once the principal (GET /api/me) is known. */
	function page(name, start) {
		document.addEventListener('DOMContentLoaded', async () => {
			let me = null;
			try {
				me = await get('/api/me');
			} catch (e) {
				status(`Who am I? ${errorText(e)}`);
			}
			nav(name, me);
			/* body[data-ready]: "ok" once the page is built, "error" when it could not be
			 * (the message is in #status); the browser test waits for it. */
			try {
				await start(me || { identity: '', role: 'auditor' });
				document.body.dataset.ready = 'ok';
			} catch (e) {
				status(errorText(e));
				document.body.dataset.ready = 'error';
			}
		});
	}

	/* A registry expiry date (valid through that day, UTC): expired / within 7 / within 30 days. */
	function expiry(date) {
		if (!date) return 'never';
		const days = Math.floor((new Date(`${date}T23:59:59Z`).getTime() - Date.now()) / 86400000);
		if (isNaN(days)) return String(date);
		if (days < 0) return badge(`expired ${date}`, 'expired');
		if (days <= 7) return badge(`${date} (${days} d)`, 'soon7');
		if (days <= 30) return badge(`${date} (${days} d)`, 'soon30');
		return date;
	}

	const isAdmin = (me) => me && me.role === 'admin';

	return { el, clear, get, post, table, bigTable, when, ago, badge, param, status, errorText, page, isAdmin, expiry, HttpError };
})();
