/*
 * cli_report_html: `tlsrelay report --html FILE`, one self-contained page.
 *
 * Everything is inline: the CSS, the report as JSON in a data block, and a
 * small script that draws one stacked bar per domain on a <canvas>.  The
 * page loads nothing from anywhere, so it can be mailed or opened offline.
 * The table is written here too, so the numbers read without the script.
 * When the script has drawn the charts it sets data-report="rendered" on
 * <body>; an error sets data-report="error" and shows it on the page.
 */
#include <string.h>

#include "cli_report.h"

static const char report_css[] =
    "body{font:14px/1.4 sans-serif;margin:2em;color:#222;background:#fff}"
    "h1{font-size:1.4em}table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
    "th:first-child,td:first-child{text-align:left}"
    ".key span{display:inline-block;margin-right:1.2em}"
    ".key i{display:inline-block;width:1em;height:1em;margin-right:.3em;vertical-align:middle}"
    "pre{background:#f4f4f4;padding:.6em}#err{color:#b00}";

/*
 * Colours: green for verified (three shades), amber for encrypted only,
 * red for cleartext, grey for failures.
 */
static const char report_js[] =
    "(function(){\n"
    "var body=document.body;\n"
    "window.onerror=function(m){body.setAttribute('data-report','error');"
    "document.getElementById('err').textContent='script error: '+m;};\n"
    "var data=JSON.parse(document.getElementById('report-data').textContent);\n"
    "var parts=[['dane','DANE','#1b7837'],['mta-sts','MTA-STS','#5aae61'],"
    "['policy','verified (policy)','#a6dba0'],['encrypted','encrypted only','#f1a340'],"
    "['cleartext','cleartext','#d73027']];\n"
    "var key=document.getElementById('key');\n"
    "parts.concat([['failed','deferred/bounced','#999']]).forEach(function(p){"
    "var s=document.createElement('span');var i=document.createElement('i');"
    "i.style.background=p[2];s.appendChild(i);s.appendChild(document.createTextNode(p[1]));"
    "key.appendChild(s);});\n"
    "var c=document.getElementById('chart');var rows=Math.max(data.domains.length,1);\n"
    "c.width=1000;c.height=40+rows*34;var g=c.getContext('2d');\n"
    "g.fillStyle='#fff';g.fillRect(0,0,c.width,c.height);g.font='13px sans-serif';\n"
    "var max=1;data.domains.forEach(function(d){var t=d.deferred+d.bounced;"
    "parts.forEach(function(p){t+=d.delivered[p[0]];});if(t>max)max=t;});\n"
    "if(!data.domains.length){g.fillStyle='#222';g.fillText('no deliveries in this period',"
    "10,30);}\n"
    "data.domains.forEach(function(d,i){var y=20+i*34,x=260,w=700;\n"
    "g.fillStyle='#222';g.fillText(d.domain,10,y+17);\n"
    "var segs=parts.map(function(p){return [d.delivered[p[0]],p[2]];});"
    "segs.push([d.deferred+d.bounced,'#999']);\n"
    "segs.forEach(function(s){var len=w*s[0]/max;if(len>0){g.fillStyle=s[1];"
    "g.fillRect(x,y,len,24);x+=len;}});});\n"
    "body.setAttribute('data-report','rendered');\n"
    "document.getElementById('status').textContent='charts rendered';\n"
    "})();\n";

/* Text for HTML content and attribute values. */
static int html_text(struct rl_buf *o, const char *s)
{
	int rc = 0;

	for (; *s && rc == 0; s++) {
		switch (*s) {
		case '<':
			rc = rl_buf_puts(o, "&lt;");
			break;
		case '>':
			rc = rl_buf_puts(o, "&gt;");
			break;
		case '&':
			rc = rl_buf_puts(o, "&amp;");
			break;
		case '"':
			rc = rl_buf_puts(o, "&quot;");
			break;
		default:
			rc = rl_buf_append(o, s, 1);
		}
	}
	return rc;
}

static int html_table(struct rl_buf *o, const struct report *r)
{
	int rc =
	    rl_buf_puts(o, "<table><tr><th>domain</th><th>DANE</th><th>MTA-STS</th>"
			   "<th>verified (policy)</th><th>encrypted only</th><th>cleartext</th>"
			   "<th>deferred</th><th>bounced</th><th>failures by reason</th>"
			   "<th>suggested policy line</th></tr>\n");

	for (size_t i = 0; i < r->n && rc == 0; i++) {
		const struct report_dom *d = &r->dom[i];

		rc = rl_buf_puts(o, "<tr><td>");
		rc = rc ? rc : html_text(o, d->domain);
		rc = rc ? rc
			: rl_buf_printf(o,
					"</td><td>%u</td><td>%u</td><td>%u</td><td>%u</td>"
					"<td>%u</td><td>%u</td><td>%u</td><td>",
					d->dane, d->sts, d->policy, d->encrypted, d->cleartext,
					d->deferred, d->bounced);
		for (size_t j = 0; j < d->sum.nreason && rc == 0; j++) {
			rc = rl_buf_printf(o, "%s%u &times; ", j ? "<br>" : "",
					   d->sum.reason[j].count);
			rc = rc ? rc : html_text(o, d->sum.reason[j].text);
		}
		rc = rc ? rc : rl_buf_puts(o, "</td><td><code>");
		rc = rc ? rc : html_text(o, d->suggestion);
		rc = rc ? rc : rl_buf_puts(o, "</code></td></tr>\n");
	}
	return rc ? rc : rl_buf_puts(o, "</table>\n");
}

/* The JSON inside <script>: "<" only occurs in strings, where \u003c is
 * the same character, so "</script>" in a reason cannot end the block. */
static int html_data(struct rl_buf *o, const struct report *r)
{
	struct rl_buf j;
	int rc;

	rl_buf_init(&j, SIZE_MAX / 2);
	rc = report_json(&j, r);
	for (size_t i = 0; i < j.len && rc == 0; i++)
		rc = j.data[i] == '<' ? rl_buf_puts(o, "\\u003c") : rl_buf_append(o, &j.data[i], 1);
	rl_buf_fini(&j);
	return rc;
}

int report_html(struct rl_buf *o, const struct report *r)
{
	char from[16], to[16];
	int rc;

	report_day_text(r->from_day, from);
	report_day_text(r->to_day, to);
	rc = rl_buf_printf(o,
			   "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
			   "<title>TLS posture %s .. %s</title><style>%s</style></head>\n"
			   "<body><h1>TLS posture per destination domain, %s .. %s (UTC)</h1>\n"
			   "<div class=\"key\" id=\"key\"></div>\n"
			   "<canvas id=\"chart\" width=\"1000\" height=\"80\"></canvas>\n"
			   "<p id=\"status\"></p><p id=\"err\"></p>\n",
			   from, to, report_css, from, to);
	rc = rc ? rc : html_table(o, r);
	rc = rc ? rc : rl_buf_puts(o, "<script type=\"application/json\" id=\"report-data\">");
	rc = rc ? rc : html_data(o, r);
	rc = rc ? rc
		: rl_buf_printf(o, "</script>\n<script>\n%s</script>\n</body></html>\n", report_js);
	return rc;
}
