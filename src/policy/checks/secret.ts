/**
 * Credentials pasted into a prompt or echoed by a model: provider API keys by their known
 * prefixes, cloud access keys, bearer tokens, JSON Web Tokens and private key blocks.
 * Prefixes, not entropy: a long random-looking word is not flagged, a real key is.
 */
import { type Check, disjoint, findAll, type Finding } from "../check"

const PATTERNS: ReadonlyArray<readonly [string, RegExp]> = [
  ["anthropic_key", /\bsk-ant-[A-Za-z0-9_-]{20,}/g],
  ["openai_key", /\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}/g],
  ["google_api_key", /\bAIza[0-9A-Za-z_-]{35}\b/g],
  ["aws_access_key", /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g],
  ["github_token", /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})/g],
  ["slack_token", /\bxox[abposr]-[A-Za-z0-9-]{10,}/g],
  ["stripe_key", /\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}/g],
  ["jwt", /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g],
  ["bearer_token", /\bBearer\s+[A-Za-z0-9._~+/-]{20,}=*/g],
  ["private_key", /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/g]
]

export const secretCheck = (name = "secret"): Check => ({
  name,
  maxSpan: 512,
  // An Anthropic key also matches the OpenAI pattern: on the same span the one listed first stands.
  find: (text): ReadonlyArray<Finding> => disjoint(PATTERNS.flatMap(([label, re]) => findAll(re, text, name, label)))
})
