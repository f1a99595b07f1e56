// Phone numbers in a text as tappable tel: links, built as text and link nodes
// (never HTML from the server, so a message cannot inject markup). Used where
// messages are shown to the child and on the console (issue 13, outcome 7).
// 8 digits (22 12 34 56, 800 33 321), 116 111-style, 5 digits (02800) and 110/112/113.
const PHONE = /(?<![\d\w])(?:\+47[\s-]?)?(?:\d{2}[\s-]?\d{2}[\s-]?\d{2}[\s-]?\d{2}|\d{3}[\s-]?\d{2}[\s-]?\d{3}|1\d{2}[\s-]\d{3}|0\d{4}|11[023])(?![\d\w])/g;

export function linkify(text) {
  const source = String(text ?? "");
  const out = document.createDocumentFragment();
  let at = 0;
  for (const match of source.matchAll(PHONE)) {
    out.append(document.createTextNode(source.slice(at, match.index)));
    const link = document.createElement("a");
    link.href = `tel:${match[0].replace(/[\s-]/g, "")}`;
    link.textContent = match[0];
    out.append(link);
    at = match.index + match[0].length;
  }
  out.append(document.createTextNode(source.slice(at)));
  return out;
}
