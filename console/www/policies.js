/* Policies: versions per group, a side-by-side diff of two versions, and change control:
 * propose -> approve (by another admin: the two-person rule) -> deploy (canary, then the rest)
 * -> rollback, with the deployment's progress per agent polled live. Buttons exist only for an
 * admin; the API refuses an auditor anyway. Routes: console/api_*.c (docs/console-api.md). */
'use strict';

ELS.page('policies', async (me) => {
	const { el, clear, get, post, table, badge, when, status, errorText } = ELS;
	const admin = ELS.isAdmin(me);
	const groupSel = document.getElementById('group');
	const fleet = await get('/api/fleet?limit=0');
	for (const g of fleet.groups) groupSel.appendChild(el('option', { value: g.name }, g.name));
	groupSel.value = ELS.param('group') || (fleet.groups[0] && fleet.groups[0].name) || '';
	let versions = [];
	let watching = null;

	const proposeCard = document.getElementById('propose-card');
	if (admin) proposeCard.hidden = false;
	else proposeCard.remove(); /* an auditor's page holds no action at all */

	const list = (x, ...keys) => (Array.isArray(x) ? x : keys.map((k) => x[k]).find(Array.isArray) || []);

	async function act(what, fn) {
		status('');
		try {
			const r = await fn();
			status(`${what}: done`, 'info');
			return r;
		} catch (e) {
			status(`${what}: ${errorText(e)}`);
			return null;
		}
	}

	function actions(v) {
		if (!admin) return '';
		const span = el('span');
		if (v.state === 'proposed') {
			const own = v.author === me.identity;
			span.appendChild(el('button', {
				type: 'button', class: 'action', dataset: { act: 'approve', id: v.id }, disabled: own,
				title: own ? 'Two-person rule: the author cannot approve their own version' : null,
				onclick: async () => { if (await act(`approve v${v.version}`, () => post(`/api/policies/${v.id}/approve`, {}))) await load(); },
			}, 'Approve'));
			span.appendChild(document.createTextNode(' '));
			span.appendChild(el('button', {
				type: 'button', class: 'action danger', dataset: { act: 'reject', id: v.id },
				onclick: async () => { if (await act(`reject v${v.version}`, () => post(`/api/policies/${v.id}/reject`, {}))) await load(); },
			}, 'Reject'));
		} else if (v.state === 'approved') {
			const canary = el('input', { type: 'text', size: 4, value: '1', 'aria-label': 'canary', dataset: { canary: v.id } });
			span.append('canary ', canary, ' ');
			span.appendChild(el('button', {
				type: 'button', class: 'action', dataset: { act: 'deploy', id: v.id },
				onclick: async () => {
					const r = await act(`deploy v${v.version}`, () => post('/api/deployments', { version_id: v.id, canary: canary.value.trim() }));
					if (r) watch(r.deployment.id);
				},
			}, 'Deploy'));
		}
		return span;
	}

	async function load() {
		const g = groupSel.value;
		history.replaceState(null, '', `/policies?group=${encodeURIComponent(g)}`);
		const data = await get(`/api/policies?group=${encodeURIComponent(g)}`);
		versions = list(data, 'versions', 'policies');
		versions.sort((a, b) => b.version - a.version);
		const rule = clear(document.getElementById('rule'));
		rule.appendChild(el('p', null, 'Two-person rule: a version proposed by one admin is deployable only after a different admin approved it. Every step is recorded with the certificate identity (Audit page).'));
		const box = clear(document.getElementById('versions'));
		const columns = [
			{ label: 'Version', cell: (v) => `v${v.version}` },
			{ label: 'State', cell: (v) => badge(v.state) },
			{ label: 'Proposed by', cell: (v) => `${v.author} ${when(v.created_at)}` },
			{ label: 'Approved by', cell: (v) => (v.approved_by ? `${v.approved_by} ${when(v.approved_at)}` : v.state === 'proposed' ? `waiting for an admin other than ${v.author}` : '—') },
			{ label: 'SHA-256', cell: (v) => (v.sha256 || '').slice(0, 16), cls: 'mono' },
			{ label: 'Comment', key: 'comment' },
		];
		if (admin) {
			columns.push({ label: 'Action', cell: actions });
		}
		box.appendChild(table(columns, versions, { id: 'versions-table' }));
		if (admin) {
			box.appendChild(el('p', null, el('button', {
				type: 'button', class: 'action danger', id: 'rollback',
				onclick: async () => {
					const r = await act(`roll back ${g}`, () => post(`/api/groups/${encodeURIComponent(g)}/rollback`, {}));
					if (r) { watch(r.deployment.id); await load(); }
				},
			}, `Roll back ${g} to the previous version`)));
		}
		const a = document.getElementById('diff-a'), b = document.getElementById('diff-b');
		clear(a); clear(b);
		for (const v of versions) {
			a.appendChild(el('option', { value: v.id }, `v${v.version} (${v.state})`));
			b.appendChild(el('option', { value: v.id }, `v${v.version} (${v.state})`));
		}
		if (versions.length > 1) { a.value = versions[1].id; b.value = versions[0].id; }
		if (versions.length && admin && !document.getElementById('body').value) {
			const latest = await get(`/api/policies/${versions[0].id}`);
			document.getElementById('body').value = latest.version.body || '';
		}
		const dep = list(await get(`/api/deployments?group=${encodeURIComponent(g)}`), 'deployments');
		if (!watching && dep.length) watch(dep[0].id);
	}

	/* Progress of one deployment, per agent, until it reaches a final state. */
	async function watch(id) {
		if (id === undefined || id === null) return;
		watching = id;
		const box = document.getElementById('deployment');
		let live = false;
		for (;;) {
			if (watching !== id) return;
			let d;
			try { d = (await get(`/api/deployments/${id}`)).deployment; } catch (e) { status(errorText(e)); return; }
			const targets = list(d, 'targets', 'agents');
			const count = (s) => targets.filter((t) => t.state === s).length;
			clear(box);
			box.appendChild(el('p', { id: 'deployment-state', dataset: { id, state: d.state } },
				`Deployment ${id} of v${d.version} to ${d.group}${d.rollback_of ? ` (rollback of deployment ${d.rollback_of})` : ''}: `, badge(d.state),
				` ${count('ok')} ok, ${count('sent')} sent, ${count('pending')} pending, ${count('failed')} failed of ${targets.length}`,
				d.halt_reason ? ` — halted: ${d.halt_reason}` : ''));
			/* a group may hold thousands: the ones that need a look first, at most 200 rows */
			const order = { failed: 0, sent: 1, pending: 2, ok: 3 };
			const shown = targets.slice().sort((x, y) => (order[x.state] ?? 4) - (order[y.state] ?? 4) || x.wave - y.wave).slice(0, 200);
			if (shown.length < targets.length)
				box.appendChild(el('p', { class: 'note' }, `The first ${shown.length} of ${targets.length} agents: failed, sent and pending first.`));
			box.appendChild(table([
				{ label: 'Agent', cell: (t) => el('a', { href: `/agent?id=${encodeURIComponent(t.agent_id)}` }, t.agent_id) },
				{ label: 'Wave', cell: (t) => (t.wave === 0 ? 'canary' : 'rest') },
				{ label: 'State', cell: (t) => badge(t.state) },
				{ label: 'Done', cell: (t) => when(t.done_at) },
				{ label: 'Error', key: 'error' },
			], shown, { id: 'targets-table' }));
			if (['done', 'halted', 'rolled_back'].includes(d.state)) {
				if (live) await load(); /* the versions' states changed while it ran */
				return;
			}
			live = true;
			await new Promise((r) => setTimeout(r, 1000));
		}
	}

	function sideBySide(left, right) {
		/* line LCS: fine for policy documents of a few hundred lines */
		const x = left.split('\n'), y = right.split('\n');
		const n = x.length, m = y.length;
		const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
		for (let i = n - 1; i >= 0; i--)
			for (let j = m - 1; j >= 0; j--)
				L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
		const pa = el('pre', { class: 'old' }), pb = el('pre', { class: 'new' });
		let i = 0, j = 0;
		const line = (pre, cls, text) => pre.appendChild(el('span', { class: cls }, text === '' ? ' ' : text));
		while (i < n || j < m) {
			if (i < n && j < m && x[i] === y[j]) { line(pa, 'same', x[i++]); line(pb, 'same', y[j++]); }
			else if (j < m && (i >= n || L[i][j + 1] >= L[i + 1][j])) { line(pa, 'same', ''); line(pb, 'add', y[j++]); }
			else { line(pa, 'del', x[i++]); line(pb, 'same', ''); }
		}
		return el('div', { class: 'diff', id: 'diff-sbs' }, pa, pb);
	}

	async function compare() {
		const a = document.getElementById('diff-a').value, b = document.getElementById('diff-b').value;
		if (!a || !b) return;
		const [ra, rb, delta] = await Promise.all([
			get(`/api/policies/${a}`), get(`/api/policies/${b}`),
			get(`/api/policies/diff?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`),
		]);
		const va = ra.version, vb = rb.version;
		const box = clear(document.getElementById('diff'));
		/* the permit-level summary: the console's own diff (unified, of the documents) */
		const lines = String(delta.diff || '').split('\n').filter((l) => /^[+-](?![+-])/.test(l));
		const ul = el('ul', { class: 'deltas', id: 'deltas' });
		for (const l of lines) ul.appendChild(el('li', { class: l[0] === '+' ? 'added' : 'removed' }, l));
		if (!ul.firstChild) ul.appendChild(el('li', null, 'the two versions are the same document'));
		box.appendChild(el('p', null, `Changes from v${va.version} to v${vb.version}:`));
		box.appendChild(ul);
		if ((rb.registry_problems || []).length)
			box.appendChild(el('p', { class: 'error' }, `Registry check of v${vb.version}: ${rb.registry_problems.join('; ')}`));
		box.appendChild(el('p', { class: 'note' }, `v${va.version} (left) against v${vb.version} (right)`));
		box.appendChild(sideBySide(va.body || '', vb.body || ''));
	}

	groupSel.addEventListener('change', () => { watching = null; load().catch((e) => status(errorText(e))); });
	document.getElementById('compare').addEventListener('submit', (e) => { e.preventDefault(); compare().catch((err) => status(errorText(err))); });
	if (admin) {
		document.getElementById('propose').addEventListener('submit', async (e) => {
			e.preventDefault();
			const r = await act('propose', () => post('/api/policies', {
				group: groupSel.value, body: document.getElementById('body').value, comment: document.getElementById('comment').value,
			}));
			if (r && (r.registry_problems || []).length)
				status(`proposed v${r.version.version}; it cannot be approved yet: ${r.registry_problems.join('; ')}`);
			if (r) await load();
		});
	}
	await load();
	if (versions.length > 1) await compare();
});
