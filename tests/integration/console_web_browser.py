#!/usr/bin/python3
"""The browser half of t_console_web.sh: Debian's chromium, headless, through chromium-driver.

Each operator is a browser profile of its own: a temporary HOME whose NSS database
($HOME/.pki/nssdb) trusts the test CA and holds that operator's certificate from els-pki, and a
user-data-dir whose preferences auto-select a certificate for the console's origin (the
per-profile form of Chromium's AutoSelectCertificateForUrls; nothing is written under /etc).
The console therefore sees the browser's own client certificate: no relay, no proxy.

Prints "PASS description" / "FAIL description" per check (the shell turns them into TAP) and
"# ..." notes; exits non-zero only when it could not run to its end.
"""
import json
import os
import subprocess
import sys
import threading
import time
import http.server
from selenium import webdriver
from selenium.common.exceptions import (NoSuchElementException, StaleElementReferenceException,
                                        TimeoutException, WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["ELS_URL"]
PKI = os.environ["ELS_PKI"]
WORK = os.environ["ELS_WORK"]
ART = os.environ["ELS_ART"]
PQ = os.environ["ELS_PQ"]
SWEPT = os.environ["ELS_SWEPT_AGENT"]
FLEET_BUDGET_MS = 2000
failures = 0
T0 = time.time()


def check(desc, ok, detail=""):
    global failures
    if not ok:
        failures += 1
    print(("PASS " if ok else "FAIL ") + desc + ("" if ok or not detail else f" ({detail})"), flush=True)
    return ok


def note(text):
    print("# " + text, flush=True)


def pq(sql):
    return subprocess.run([PQ, sql], check=True, capture_output=True, text=True).stdout.strip()


def run(*argv):
    subprocess.run(argv, check=True, capture_output=True)


def browser(name, cert):
    """A chromium for one operator (cert: els-pki console name, or None for no certificate)."""
    home = os.path.join(WORK, "browser-" + name)
    nss = os.path.join(home, ".pki", "nssdb")
    os.makedirs(nss)
    run("certutil", "-N", "-d", "sql:" + nss, "--empty-password")
    run("certutil", "-A", "-d", "sql:" + nss, "-n", "els test CA", "-t", "C,,", "-i", os.path.join(PKI, "ca.crt"))
    if cert:
        p12 = os.path.join(home, cert + ".p12")
        run("openssl", "pkcs12", "-export", "-in", os.path.join(PKI, "consoles", cert + ".crt"),
            "-inkey", os.path.join(PKI, "consoles", cert + ".key"), "-out", p12, "-passout", "pass:", "-name", cert)
        run("pk12util", "-i", p12, "-d", "sql:" + nss, "-W", "")
    profile = os.path.join(home, "profile")
    os.makedirs(os.path.join(profile, "Default"))
    prefs = {"profile": {"content_settings": {"exceptions": {"auto_select_certificate": {
        URL + ",*": {"setting": {"filters": [{"ISSUER": {"CN": "els management CA"}}]}}}}}}}
    with open(os.path.join(profile, "Default", "Preferences"), "w") as f:
        json.dump(prefs, f)
    o = webdriver.ChromeOptions()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000", "--no-first-run", "--disable-extensions", "--disable-sync",
              "--disable-background-networking", "--disable-component-update", "--user-data-dir=" + profile):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    env = dict(os.environ, HOME=home)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver", env=env), options=o)
    d.set_page_load_timeout(20)
    return d


def js_errors(d):
    """SEVERE entries of the browser console since the last call (errors, CSP violations,
    failed loads); the 403s this test provokes on purpose are filtered by the caller."""
    return [e["message"] for e in d.get_log("browser") if e["level"] == "SEVERE"]


def load(d, path, name=None, expect_ok=True):
    """Loads a page, waits for body[data-ready], checks it built without a JavaScript error,
    saves a screenshot as ART/name.png. Returns the ready state."""
    note(f"{time.time() - T0:5.1f} s: {path}")
    d.get(URL + path)
    try:
        WebDriverWait(d, 20).until(lambda d: d.execute_script("return document.body && document.body.dataset.ready"))
    except TimeoutException:
        pass
    ready = d.execute_script("return document.body ? document.body.dataset.ready : null")
    status = d.execute_script("const s = document.getElementById('status'); return s ? s.textContent : ''")
    errs = js_errors(d)
    if expect_ok:
        check(f"{path}: page built", ready == "ok", f"ready={ready!r} status={status!r}")
        check(f"{path}: no JavaScript error", not errs, "; ".join(errs)[:600])
    if name:
        shot(d, name)
    return ready


def text(d, css):
    els = d.find_elements(By.CSS_SELECTOR, css)
    return els[0].text if els else ""


def count(d, css):
    return d.execute_script("return document.querySelectorAll(arguments[0]).length", css)


def click(d, how, what):
    """Clicks an element, finding it again when the page re-rendered it meanwhile."""
    for _ in range(20):
        try:
            d.find_element(how, what).click()
            return
        except (StaleElementReferenceException, NoSuchElementException):
            time.sleep(0.2)
    d.find_element(how, what).click()


def deployment_shown(d):
    """[id, state] of the deployment the policies page follows."""
    return d.execute_script("const e = document.getElementById('deployment-state'); return e ? [e.dataset.id, e.dataset.state] : null")


def shot(d, name):
    """A screenshot of the whole page (up to 1600 px high) as ART/name.png."""
    h = d.execute_script("return Math.min(document.documentElement.scrollHeight, 1600)")
    d.set_window_size(1400, max(h + 120, 1000))
    d.save_screenshot(os.path.join(ART, name + ".png"))
    d.set_window_size(1400, 1000)


def not_pwned(d, where):
    check(f"{where}: hostile agent strings did not run", d.execute_script("return window.ELS_PWNED === undefined"))
    check(f"{where}: ... nor became elements", count(d, "main img, main svg, main script, main b") == 0)


def wait_for(desc, fn, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if fn():
                return check(desc, True)
        except WebDriverException:
            pass
        time.sleep(0.2)
    return check(desc, False, "timed out")


def post_from_page(d, path, body, with_csrf):
    """A POST from the console's own origin, as a script in the page would send it."""
    return d.execute_async_script("""
        const [path, body, withCsrf, done] = arguments;
        const m = document.cookie.match(/(?:^|; )els_csrf=([^;]*)/);
        const h = {'Content-Type': 'application/json'};
        if (withCsrf && m) h['X-ELS-CSRF'] = m[1];
        fetch(path, {method: 'POST', headers: h, body: JSON.stringify(body), credentials: 'same-origin'})
            .then(r => r.text().then(t => done([r.status, t]))).catch(e => done([0, String(e)]));
    """, path, body, with_csrf)


def main():
    drivers = []
    try:
        # ---- no certificate: no page ----
        nocert = browser("nocert", None)
        drivers.append(nocert)
        try:
            nocert.get(URL + "/fleet")
        except WebDriverException:
            pass
        src = nocert.page_source
        check("a browser without a client certificate gets no page", "els-console" not in nocert.title and "fleet-table" not in src,
              nocert.title)
        check("... the handshake failed (Chromium's error page)", "ERR_" in src, src[:200])
        nocert.save_screenshot(os.path.join(ART, "no-certificate.png"))
        nocert.quit()
        drivers.remove(nocert)

        # ---- admin alice ----
        alice = browser("alice", "alice")
        drivers.append(alice)
        load(alice, "/fleet", None)  # warms the profile; the timed load is the next one
        total = int(pq("SELECT count(*) FROM console_agents"))
        alice.get(URL + "/fleet")
        WebDriverWait(alice, 30).until(lambda d: d.execute_script("return document.body.dataset.renderedMs"))
        ms = int(alice.execute_script("return document.body.dataset.renderedMs"))
        rows = count(alice, "#fleet-table [role=rowgroup] [role=row]")
        t = alice.execute_script("""const n = performance.getEntriesByType('navigation')[0];
            const f = performance.getEntriesByType('resource').find(r => r.name.includes('/api/fleet'));
            return [Math.round(n.responseEnd), f ? Math.round(f.requestStart) : -1, f ? Math.round(f.responseEnd) : -1, f ? f.encodedBodySize : -1]""")
        note(f"fleet page: {rows} agents rendered {ms} ms after navigation start (budget {FLEET_BUDGET_MS} ms): "
             f"page at {t[0]} ms, /api/fleet asked at {t[1]} ms, answered at {t[2]} ms ({t[3]} bytes)")
        print(f"MEASURE fleet_render_ms={ms} agents={rows}", flush=True)
        check(f"fleet: every agent in the table ({total})", rows == total, f"{rows}")
        check(f"fleet: {rows} agents render in under {FLEET_BUDGET_MS} ms ({ms} ms)", ms < FLEET_BUDGET_MS)
        check("fleet: no JavaScript error", not js_errors(alice))
        counts = text(alice, "#counts")
        check("fleet: counts per state", "drift" in counts and "silent" in counts and str(total) in counts, counts)
        alice.save_screenshot(os.path.join(ART, "fleet.png"))
        evil = alice.execute_script("""
            for (const tr of document.querySelectorAll('#fleet-table [role=rowgroup] [role=row]'))
                if (tr.children[0].textContent === 'evil-1') return [tr.children[1].textContent, tr.children[3].textContent];
            return null""")
        check("fleet: a hostile host name shows as text", evil and evil[0] == '<img src=x onerror="window.ELS_PWNED=1">', str(evil))
        check("fleet: a hostile version shows as text", evil and evil[1] == "<script>window.ELS_PWNED=2</script>", str(evil))
        not_pwned(alice, "fleet")
        # filters: state and search run in PostgreSQL
        click(alice, By.CSS_SELECTOR, "#counts button[data-state='drift']")
        want = pq("SELECT count(*) FROM console_web_agent_state WHERE state = 'drift'")
        wait_for(f"fleet: the drift filter shows the {want} drifting agents",
                 lambda: count(alice, "#fleet-table [role=rowgroup] [role=row]") == int(want) and "drift" in alice.current_url)
        load(alice, "/fleet?q=web-0002", None, expect_ok=True)
        check("fleet: search narrows the list", count(alice, "#fleet-table [role=rowgroup] [role=row]") == 10,
              str(count(alice, "#fleet-table [role=rowgroup] [role=row]")))

        # ---- agent pages ----
        load(alice, "/agent?id=" + SWEPT, "agent")
        body = alice.find_element(By.TAG_NAME, "main").text
        check("agent: status shown", "Steering rules" in body and "present" in body)
        check("agent: running permits with their registry entries", "public web service" in text(alice, "#permits-table"))
        check("agent: the unpermitted listener is flagged", "no permit" in text(alice, "#listeners-table") and "8080" in text(alice, "#listeners-table"))
        drops = pq(f"SELECT count(*) FROM els_drops WHERE agent_id = '{SWEPT}'")
        check(f"agent: the {drops} swept drops listed", count(alice, "#drops-table tbody tr") == int(drops),
              str(count(alice, "#drops-table tbody tr")))
        check("agent: a swept would_drop listed", count(alice, "#would-table tbody tr") >= 1)
        check("agent: admitted flows per permit", count(alice, "#admits-table tbody tr") >= 1)
        check("agent: deployment history", "alice" in text(alice, "#deployments-table"))
        load(alice, "/agent?id=evil-1", None)
        check("agent: a hostile permit id shows as text", "<svg onload=window.ELS_PWNED=3>" in text(alice, "#permits-table"))
        check("agent: a hostile listener address shows as text", "<b>0.0.0.0</b>" in text(alice, "#listeners-table"))
        not_pwned(alice, "agent")

        # ---- drift, registry, traffic, audit ----
        # (the console's drift pass runs meanwhile: the count may move between two reads)
        before = int(pq("SELECT count(*) FROM console_drift WHERE resolved_at IS NULL"))
        load(alice, "/drift", "drift")
        after = int(pq("SELECT count(*) FROM console_drift WHERE resolved_at IS NULL"))
        shown = count(alice, "#drift-table tbody tr")
        check(f"drift: every open finding ({after})", shown in (before, after) and shown >= 10, str(shown))
        dt = text(alice, "#drift-table")
        check("drift: each kind with what to do", all(k in dt for k in ("policy", "rules", "listener", "monitor", "expired_permit", "silent"))
              and "els-log --verify" in dt)

        load(alice, "/registry", "registry")
        check("registry: an expired entry is flagged", count(alice, "#registry-table .badge.expired") >= 1)
        check("registry: 7-day and 30-day expiry warnings", count(alice, "#registry-table .badge.soon7") >= 1 and count(alice, "#registry-table .badge.soon30") >= 1)
        hits = alice.execute_script("""
            const t = document.getElementById('registry-table'); const h = [...t.tHead.rows[0].cells].map(c => c.textContent);
            for (const tr of t.tBodies[0].rows) if (tr.cells[0].textContent === 'https') return tr.cells[h.indexOf('Hits (30 d)')].textContent;
            return null""")
        want = pq("SELECT count(*) FROM els_admits WHERE rule_name = 'https' AND ts > now() - interval '30 days'")
        check(f"registry: hits per entry across the fleet (https: {want})", hits == want, str(hits))
        first = text(alice, "#registry-table tbody tr td")
        click(alice, By.CSS_SELECTOR, "#registry-table th[data-key='id']")
        check("registry: sortable (by permit id)", text(alice, "#registry-table tbody tr td") == "dns-old", first)

        load(alice, "/traffic", "traffic")
        check("traffic: five charts (Chart.js)", count(alice, "canvas") == 5, str(count(alice, "canvas")))
        for kind in ("drops_by_group", "blocked_ports", "blocked_sources", "would_drops", "admits_by_permit"):
            check(f"traffic: {kind} table under its chart", count(alice, f"#table-{kind} tbody tr") >= 1)
        csv = alice.execute_async_script("""
            const done = arguments[0]; const a = document.querySelector('#section-blocked_ports a.csv');
            fetch(a.href).then(r => r.text().then(t => done([r.status, r.headers.get('Content-Type'), t]))).catch(e => done([0, '', String(e)]))""")
        check("traffic: CSV download of a table", csv[0] == 200 and csv[1].startswith("text/csv") and csv[2].startswith("proto,port,packets,agents\r\n"), str(csv)[:200])
        check("traffic: the swept agent's real drops count in the ports table", "3389" in text(alice, "#table-blocked_ports"))

        load(alice, "/audit", None)
        check("audit: console actions with identity and outcome", count(alice, "#audit-table tbody tr") >= 3 and "bob" in text(alice, "#audit-table"))

        # ---- change control by clicking: propose (alice) -> approve (bob) -> deploy -> rollback ----
        load(alice, "/policies?group=lab", "policies")
        before = int(pq("SELECT count(*) FROM console_policy_versions WHERE grp = 'lab'"))
        body = pq("SELECT body FROM console_policy_versions WHERE grp = 'lab' ORDER BY version DESC LIMIT 1")
        new_body = body.replace('local_ports = [443]; }', 'local_ports = [443]; },\n    { id = "ssh-admin"; dir = "in"; proto = "tcp"; local_ports = [22]; }')
        alice.execute_script("document.getElementById('body').value = arguments[0]", new_body)
        alice.find_element(By.ID, "comment").send_keys("ssh for the lab")
        click(alice, By.ID, "propose-go")
        wait_for("policies: alice proposes lab v2 by clicking",
                 lambda: pq("SELECT state || ' ' || author FROM console_policy_versions WHERE grp = 'lab' AND version = 2") == "proposed alice")
        vid = pq("SELECT id FROM console_policy_versions WHERE grp = 'lab' AND version = 2")
        wait_for("policies: the new version is listed", lambda: count(alice, f"button[data-act='approve'][data-id='{vid}']") == 1)
        check("policies: two-person rule visible: alice cannot approve her own version",
              alice.find_element(By.CSS_SELECTOR, f"button[data-act='approve'][data-id='{vid}']").get_attribute("disabled") is not None)
        check("policies: no JavaScript error while proposing", not js_errors(alice))

        bob = browser("bob", "bob")
        drivers.append(bob)
        load(bob, "/policies?group=lab")
        click(bob, By.CSS_SELECTOR, f"button[data-act='approve'][data-id='{vid}']")
        wait_for("policies: bob approves it by clicking",
                 lambda: pq(f"SELECT state || ' ' || approved_by FROM console_policy_versions WHERE id = {vid}") == "approved bob")
        wait_for("policies: ... and the page shows it approved", lambda: count(bob, f"button[data-act='deploy'][data-id='{vid}']") == 1)
        click(bob, By.CSS_SELECTOR, f"button[data-act='deploy'][data-id='{vid}']")
        wait_for("policies: bob deploys it by clicking",
                 lambda: int(pq(f"SELECT count(*) FROM console_deployments WHERE grp = 'lab' AND version_id = {vid}")) == 1)
        wait_for("policies: the deployment's progress per agent is shown",
                 lambda: count(bob, "#targets-table tbody tr") == 2 and "lab-2" in text(bob, "#targets-table"))
        shot(bob, "policies-deploying")
        dep = pq(f"SELECT id FROM console_deployments WHERE version_id = {vid}")
        wait_for("policies: canary, health gate, the rest: the page follows it to done",
                 lambda: deployment_shown(bob) == [dep, "done"], timeout=40)
        check("... both lab agents applied it", pq(f"SELECT count(*) FROM console_deployment_targets t JOIN console_deployments d ON d.id = t.deployment_id WHERE d.version_id = {vid} AND t.state = 'ok'") == "2")
        sha = pq(f"SELECT sha256 FROM console_policy_versions WHERE id = {vid}")
        wait_for("... and report running it", lambda: pq(f"SELECT count(*) FROM console_agents WHERE grp = 'lab' AND policy_sha256 = '{sha}'") == "2")
        shot(bob, "policies-deployed")
        load(bob, "/policies?group=lab")
        click(bob, By.ID, "rollback")
        wait_for("policies: rollback by clicking deploys the previous version",
                 lambda: pq("SELECT count(*) FROM console_deployments WHERE grp = 'lab' AND rollback_of IS NOT NULL") == "1")
        back = pq("SELECT id FROM console_deployments WHERE grp = 'lab' AND rollback_of IS NOT NULL")
        wait_for("... to every lab agent: the page follows the rollback to done",
                 lambda: deployment_shown(bob) == [back, "done"], timeout=40)
        v1 = pq("SELECT sha256 FROM console_policy_versions WHERE grp = 'lab' AND version = 1")
        wait_for("... which run lab v1 again", lambda: pq(f"SELECT count(*) FROM console_agents WHERE grp = 'lab' AND policy_sha256 = '{v1}'") == "2")
        events = open(os.path.join(WORK, "lab-1.events")).read()
        check("the agent was asked on behalf of bob, the admin who clicked", '"identity": "bob"' in events, events[-300:])
        check("policies: no JavaScript error while approving, deploying, rolling back", not js_errors(bob))
        shot(bob, "policies-rollback")
        load(alice, "/policies?group=lab", None)
        check("policies: side-by-side diff of two versions", count(alice, "#diff-sbs .add") >= 1 and "ssh-admin" in text(alice, "#diff-sbs"))
        shot(alice, "policies-diff")
        load(alice, "/audit", None)
        at = text(alice, "#audit-table")
        check("audit: the click-through is recorded with identities", "alice" in at and "bob" in at)

        # ---- forged requests ----
        versions = pq("SELECT count(*) FROM console_policy_versions")
        st, _ = post_from_page(alice, "/api/policies", {"group": "lab", "body": new_body, "comment": "no token"}, False)
        check("a POST without the anti-CSRF header is refused", st == 403, str(st))
        evil_dir = os.path.join(WORK, "evil")
        os.makedirs(evil_dir)
        with open(os.path.join(evil_dir, "evil.html"), "w") as f:
            f.write(f"""<!doctype html><form id=f method=post action="{URL}/api/policies" enctype="text/plain">
<input name='{{"group":"lab","comment":"forged","body":"' value='x"}}'></form>
<script>document.getElementById('f').submit()</script>""")
        handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=evil_dir)
        evil_srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=evil_srv.serve_forever, daemon=True).start()
        note(f"{time.time() - T0:5.1f} s: a forged form from another origin")
        alice.get(f"http://127.0.0.1:{evil_srv.server_address[1]}/evil.html")
        note(f"{time.time() - T0:5.1f} s: loaded")
        wait_for("a forged cross-site form POST reaches the console", lambda: alice.current_url.startswith(URL))
        check("... and is refused (anti-CSRF)", "csrf" in alice.page_source, alice.page_source[:300])
        evil_srv.shutdown()
        note(f"{time.time() - T0:5.1f} s: forged form done")
        check("... nothing was proposed by the forged requests", pq("SELECT count(*) FROM console_policy_versions") == versions)
        check("... the refusals are in the audit trail",
              int(pq("SELECT count(*) FROM console_audit WHERE identity = 'alice' AND outcome LIKE 'refused%CSRF%'")) >= 2)
        js_errors(alice)  # the refused requests' 403s are expected

        # ---- auditor carol: sees everything, can do nothing ----
        note(f"{time.time() - T0:5.1f} s: auditor")
        carol = browser("carol", "carol")
        drivers.append(carol)
        for page in ("/fleet", "/agent?id=" + SWEPT, "/drift", "/policies?group=lab", "/registry", "/traffic", "/audit"):
            load(carol, page, "audit" if page == "/audit" else None)  # the trail after everything above
            n = count(carol, "button.action, #propose, #rollback, textarea")
            check(f"auditor: no action on {page}", n == 0, f"{n} found")
        load(carol, "/policies?group=web", "policies-auditor")
        check("auditor: sees the pending approval (web v2, bob)", "waiting for an admin other than bob" in text(carol, "#versions-table"))
        pending = pq("SELECT id FROM console_policy_versions WHERE grp = 'web' AND version = 2")
        st, _ = post_from_page(carol, f"/api/policies/{pending}/approve", {}, True)
        check("auditor: an approval sent anyway (with a valid token) is refused", st == 403, str(st))
        check("... the version stays proposed", pq(f"SELECT state FROM console_policy_versions WHERE id = {pending}") == "proposed")
        check("... and the refusal is audited", int(pq("SELECT count(*) FROM console_audit WHERE identity = 'carol' AND outcome LIKE 'refused%'")) >= 1)
    finally:
        for d in drivers:
            try:
                d.quit()
            except Exception:
                pass
    note(f"{failures} browser check(s) failed" if failures else "every browser check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
