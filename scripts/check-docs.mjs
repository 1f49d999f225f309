#!/usr/bin/env node
// npm run check:docs (and npm test's Docs stage): keeps the documentation honest, in plain Node.
// - No paragraph of 60 characters or more is written twice, in one file or in two (README.md, CHANGELOG.md,
//   docs/*.md; fenced code blocks and headings are not paragraphs; a list item counts as a paragraph).
// - README.md fits one screen: at most 60 lines above its Links (or Documentation) heading.
// - Every relative link and image in those files points to a file that exists (and a #fragment to a heading).
// Exit status 0 when all hold; 1 with each problem on stderr.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The shortest paragraph the duplicate check compares: shorter ones (a "See below.") may repeat. */
export const MIN_PARAGRAPH_CHARS = 60;
/** README.md's lines above its links heading: what a newcomer reads in one screen. */
export const README_MAX_LINES = 60;
const LINKS_HEADING = /^#{1,6}\s+(Links|Documentation)\b/i;
const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const LIST_ITEM = /^\s*([-*+]|\d+[.)])\s+/;

/** The checked files, relative to the root: README.md, CHANGELOG.md, then docs/*.md. */
export function docFiles(root = ROOT) {
  const docs = existsSync(join(root, 'docs'))
    ? readdirSync(join(root, 'docs'))
        .filter((name) => name.endsWith('.md'))
        .sort()
        .map((name) => `docs/${name}`)
    : [];
  return ['README.md', 'CHANGELOG.md', ...docs].filter((file) => existsSync(join(root, file)));
}

/**
 * The text lines of a Markdown file outside fenced code blocks, each with its line number (1-based); a
 * fenced block's lines become empty, so they also end paragraphs.
 * @param {string} text
 */
export function proseLines(text) {
  /** @type {{ line: number, text: string }[]} */
  const lines = [];
  /** @type {string | null} */
  let fence = null;
  text.split(/\r?\n/).forEach((line, i) => {
    const opening = FENCE.exec(line);
    if (fence === null) {
      if (opening) fence = opening[1];
      lines.push({ line: i + 1, text: opening ? '' : line });
      return;
    }
    const closes = opening && opening[1][0] === fence[0] && opening[1].length >= fence.length;
    if (closes) fence = null;
    lines.push({ line: i + 1, text: '' });
  });
  return lines;
}

/**
 * Paragraphs: runs of non-blank lines outside code blocks; a heading is none, and a list item starts one.
 * @param {string} text
 * @returns {{ line: number, text: string }[]}
 */
export function paragraphs(text) {
  /** @type {{ line: number, text: string }[]} */
  const found = [];
  /** @type {{ line: number, text: string } | null} */
  let current = null;
  const end = () => {
    if (current) found.push(current);
    current = null;
  };
  for (const { line, text: content } of proseLines(text)) {
    if (!content.trim() || /^\s{0,3}#/.test(content)) {
      end();
      continue;
    }
    if (LIST_ITEM.test(content)) end();
    if (current) current.text += `\n${content}`;
    else current = { line, text: content };
  }
  end();
  return found;
}

/** A paragraph as compared: without list markers or quote marks, whitespace collapsed, lower case. @param {string} text */
export function normalise(text) {
  return text
    .replace(LIST_ITEM, '')
    .replace(/^\s*>\s?/gm, '')
    .replace(/\s+/g, ' ')
    .trim()
    .toLowerCase();
}

/** The first words of a paragraph, to name it in a message. @param {string} text */
function firstWords(text) {
  const words = text.replace(/\s+/g, ' ').trim().split(' ');
  return words.slice(0, 8).join(' ') + (words.length > 8 ? ' ...' : '');
}

/**
 * Paragraphs of MIN_PARAGRAPH_CHARS or more written twice.
 * @param {{ file: string, text: string }[]} docs
 * @returns {string[]} one message per repeat
 */
export function duplicateParagraphs(docs) {
  /** @type {Map<string, string>} */
  const seen = new Map();
  const problems = [];
  for (const { file, text } of docs) {
    for (const paragraph of paragraphs(text)) {
      const key = normalise(paragraph.text);
      if (key.length < MIN_PARAGRAPH_CHARS) continue;
      const where = `${file}:${paragraph.line}`;
      const first = seen.get(key);
      if (first) problems.push(`the paragraph "${firstWords(paragraph.text)}" is in ${first} and again in ${where}`);
      else seen.set(key, where);
    }
  }
  return problems;
}

/**
 * README.md's lines above its links heading, or a problem.
 * @param {string} text
 * @returns {{ lines: number } | { problem: string }}
 */
export function readmeScreen(text) {
  const heading = proseLines(text).find(({ text: line }) => LINKS_HEADING.test(line));
  if (!heading) return { problem: 'README.md has no "Links" or "Documentation" heading' };
  const lines = heading.line - 1;
  if (lines > README_MAX_LINES)
    return {
      problem: `README.md has ${lines} lines above its "${heading.text.trim()}" heading, more than ${README_MAX_LINES}: move the rest to docs/`,
    };
  return { lines };
}

/**
 * The relative link targets of a Markdown file (inline links and images, and reference definitions), outside
 * code blocks and code spans: the path ('' for the file itself) and the #fragment, if any.
 * @param {string} text
 * @returns {{ line: number, target: string, fragment: string | null }[]}
 */
export function relativeLinks(text) {
  const links = [];
  for (const { line, text: content } of proseLines(text)) {
    const prose = content.replace(/(`+)[^`]*?\1/g, '');
    const targets = [
      ...[...prose.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]),
      ...[...prose.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/g)].map((m) => m[1]),
    ];
    for (const target of targets) {
      if (/^([a-z][a-z0-9+.-]*:|\/\/)/i.test(target)) continue;
      const hash = target.indexOf('#');
      const fragment = hash < 0 ? null : decodeURIComponent(target.slice(hash + 1));
      links.push({ line, target: decodeURIComponent(target.replace(/[?#].*$/, '')), fragment });
    }
  }
  return links;
}

/**
 * The anchors GitHub gives a Markdown file's headings: the heading's text in lower case, without punctuation,
 * spaces as hyphens; a repeated one gets -1, -2, ...
 * @param {string} text
 */
export function headingAnchors(text) {
  const anchors = new Set();
  for (const { text: line } of proseLines(text)) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = heading[1]
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/[`*]/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    let anchor = base;
    for (let n = 1; anchors.has(anchor); n++) anchor = `${base}-${n}`;
    anchors.add(anchor);
  }
  return anchors;
}

/** Every problem of the checked files: duplicates, README's length, links to missing files. */
export function checkDocs(root = ROOT) {
  const docs = docFiles(root).map((file) => ({ file, text: readFileSync(join(root, file), 'utf8') }));
  const problems = duplicateParagraphs(docs);
  const readme = docs.find((doc) => doc.file === 'README.md');
  const screen = readme ? readmeScreen(readme.text) : { problem: 'there is no README.md' };
  if ('problem' in screen) problems.push(screen.problem);
  for (const { file, text } of docs) {
    for (const { line, target, fragment } of relativeLinks(text)) {
      const path = join(root, dirname(file), target);
      const link = `${target}${fragment === null ? '' : `#${fragment}`}`;
      if (!existsSync(path)) problems.push(`${file}:${line} links to ${link}, which does not exist`);
      else if (relative(root, path).startsWith('..'))
        problems.push(`${file}:${line} links to ${link}, outside the repository`);
      else if (fragment !== null && (target === '' || target.endsWith('.md'))) {
        const linked = target === '' ? text : readFileSync(path, 'utf8');
        if (!headingAnchors(linked).has(fragment.toLowerCase()))
          problems.push(`${file}:${line} links to ${link}, which names no heading there`);
      }
    }
  }
  return { files: docs.map((doc) => doc.file), readmeLines: 'lines' in screen ? screen.lines : null, problems };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const { files, readmeLines, problems } = checkDocs();
  if (problems.length) {
    console.error(`docs check FAILED (${problems.length}):`);
    for (const problem of problems) console.error(`- ${problem}`);
    process.exit(1);
  }
  console.log(
    `docs: ${files.length} files, no paragraph written twice, README.md ${readmeLines} lines above its links, every relative link found`,
  );
}
