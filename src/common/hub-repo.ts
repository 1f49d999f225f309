// How octoclip names a model on the Hugging Face Hub, shared by the studio and the CLI: `org/name` or
// `org/name@revision` (a branch, tag or commit), the URL of one of its files, the files a CLIP repo holds,
// and what to tell a person when the Hub refuses or the repo has only a pickle checkpoint. The file names are
// in file-names.ts.

import { MODEL_FILES, PICKLE_WEIGHTS_FILE } from './file-names';

export const HUB_URL = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';
/** The model the studio offers first: openai/clip-vit-base-patch32, the fastest to train. */
export const DEFAULT_HUB_MODEL = 'openai/clip-vit-base-patch32';

const REPO_ID = /^[\w.-]+\/[\w.-]+$/;
const COMMIT_HASH = /^[0-9a-f]{40}$/;

export interface HubModelSpec {
  repo: string;
  revision: string;
}

/** Reads `org/name` or `org/name@revision`; null when it is not a repo id. */
export function parseHubModelSpec(spec: string): HubModelSpec | null {
  const at = spec.indexOf('@');
  const repo = at < 0 ? spec : spec.slice(0, at);
  const revision = at < 0 ? DEFAULT_REVISION : spec.slice(at + 1);
  if (!REPO_ID.test(repo) || revision === '' || /\s|\.\./.test(revision)) return null;
  return { repo, revision };
}

export function formatHubModelSpec({ repo, revision }: HubModelSpec): string {
  return revision === DEFAULT_REVISION ? repo : `${repo}@${revision}`;
}

export function isCommitHash(revision: string): boolean {
  return COMMIT_HASH.test(revision);
}

/** The Hub's download URL; a revision such as refs/pr/1 is one path segment, its slashes escaped. */
export function hubFileUrl(spec: HubModelSpec, file: string, endpoint = HUB_URL): string {
  return `${endpoint}/${spec.repo}/resolve/${encodeURIComponent(spec.revision)}/${file}`;
}

/** What a 401 or 403 from the Hub means, and what to do about it. */
export function hubAccessProblem(repo: string, status: number, tokenHint: string): string {
  if (status === 403) {
    return (
      `The Hugging Face Hub refused access to ${repo} (403): accept the licence on https://huggingface.co/${repo} ` +
      `with the account the token belongs to, or use a token with read access.`
    );
  }
  return (
    `${repo} needs a token (401): it is gated or private, or does not exist. Accept its licence on ` +
    `https://huggingface.co/${repo} if it asks, then ${tokenHint} (a read token from https://huggingface.co/settings/tokens).`
  );
}

/** Why a repo with only pytorch_model.bin is refused, and how to get a safetensors file. */
export function pickleOnlyProblem(where: string): string {
  return (
    `${where} has only ${PICKLE_WEIGHTS_FILE}, a pickle file, which octoclip never loads (unpickling can run any code). ` +
    `Use a revision with ${MODEL_FILES.weights} (the Hub's safetensors conversion bot opens one as a pull request: ` +
    `org/name@refs/pr/N), or convert it in Python: ` +
    `CLIPModel.from_pretrained(path).save_pretrained(out, safe_serialization=True).`
  );
}
