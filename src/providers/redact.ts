/**
 * Providers echo keys in their errors ("Incorrect API key provided: sk-...") and Quorum
 * passes their reasons on, so every upstream message goes through this first: the
 * configured keys by value, then anything shaped like a well-known key format.
 */
const KEY_SHAPES: ReadonlyArray<RegExp> = [
  /\bsk-[A-Za-z0-9_*-]{6,}/g, // OpenAI, Anthropic (sk-ant-), DeepSeek, OpenRouter (sk-or-)
  /\bAIza[0-9A-Za-z_-]{10,}/g, // Google
  /\bgsk_[A-Za-z0-9]{10,}/g, // Groq
  /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi,
  /([?&](?:key|api_key|apikey|access_token)=)[^&\s"']+/gi
]

export type Redactor = (text: string) => string

export const makeRedactor = (secrets: ReadonlyArray<string>): Redactor => {
  // Longest first, so a key that contains another is removed whole.
  const exact = [...new Set(secrets.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length)
  return (text) => {
    let out = text
    for (const secret of exact) out = out.split(secret).join("[redacted]")
    for (const shape of KEY_SHAPES) {
      out = out.replace(shape, (_match, prefix: unknown) =>
        typeof prefix === "string" && prefix.endsWith("=") ? `${prefix}[redacted]` : "[redacted]")
    }
    return out
  }
}
