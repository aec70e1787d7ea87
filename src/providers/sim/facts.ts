/**
 * A handful of facts a simulated model "knows", each with the wrong answer a weaker
 * model plausibly gives (the largest city for the capital), so that a mistaken model
 * looks like a real one and consensus has something to correct.
 */

export interface Fact {
  readonly answer: string
  readonly wrong: string
  /** The fact as a sentence, for the given answer (right or wrong). */
  readonly statement: (answer: string) => string
}

const CAPITALS: ReadonlyArray<readonly [ReadonlyArray<string>, string, string, string]> = [
  // [names in prompts, country as written, capital, a plausible wrong capital]
  [["france"], "France", "Paris", "Lyon"],
  [["germany"], "Germany", "Berlin", "Munich"],
  [["italy"], "Italy", "Rome", "Milan"],
  [["spain"], "Spain", "Madrid", "Barcelona"],
  [["portugal"], "Portugal", "Lisbon", "Porto"],
  [["japan"], "Japan", "Tokyo", "Osaka"],
  [["china"], "China", "Beijing", "Shanghai"],
  [["india"], "India", "New Delhi", "Mumbai"],
  [["australia"], "Australia", "Canberra", "Sydney"],
  [["canada"], "Canada", "Ottawa", "Toronto"],
  [["brazil"], "Brazil", "Brasília", "Rio de Janeiro"],
  [["turkey", "türkiye"], "Turkey", "Ankara", "Istanbul"],
  [["switzerland"], "Switzerland", "Bern", "Zurich"],
  [["egypt"], "Egypt", "Cairo", "Alexandria"],
  [["united kingdom", "uk", "britain", "england"], "the United Kingdom", "London", "Manchester"],
  [["united states", "usa", "america"], "the United States", "Washington, D.C.", "New York"]
]

const OTHERS: ReadonlyArray<readonly [RegExp, Fact]> = [
  [/\blargest planet\b/i, { answer: "Jupiter", wrong: "Saturn", statement: (a) => `The largest planet in the Solar System is ${a}` }],
  [/\b(?:chemical )?symbol (?:for|of) gold\b/i, { answer: "Au", wrong: "Ag", statement: (a) => `The chemical symbol for gold is ${a}` }],
  [/\bwho wrote hamlet\b|\bauthor of hamlet\b/i, { answer: "William Shakespeare", wrong: "Christopher Marlowe", statement: (a) => `Hamlet was written by ${a}` }],
  [/\bboiling point of water\b/i, { answer: "100 °C", wrong: "90 °C", statement: (a) => `Water boils at ${a} at sea level` }]
]

const mentions = (text: string, name: string): boolean => new RegExp(`(^|[^a-z])${name}([^a-z]|$)`).test(text)

/** The fact a prompt asks about, if it is one of the few known. */
export const findFact = (prompt: string): Fact | undefined => {
  const text = prompt.toLowerCase()
  if (/\bcapital\b/.test(text)) {
    for (const [names, country, capital, wrong] of CAPITALS) {
      if (names.some((name) => mentions(text, name))) {
        return { answer: capital, wrong, statement: (a) => `The capital of ${country} is ${a}` }
      }
    }
  }
  return OTHERS.find(([pattern]) => pattern.test(prompt))?.[1]
}
