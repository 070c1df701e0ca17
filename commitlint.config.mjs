/**
 * Conventional Commits (https://www.conventionalcommits.org), which semantic-release reads to pick the next version:
 * `fix:` → patch, `feat:` → minor, `!` or a `BREAKING CHANGE:` footer → major. Checked by the `commit-msg` hook
 * (`git config core.hooksPath .githooks`) and, on pull requests, by the `commitlint` job of ci.yml.
 */
export default {
  extends: ["@commitlint/config-conventional"],
  rules: {
    "type-enum": [
      2,
      "always",
      ["build", "chore", "ci", "docs", "feat", "fix", "perf", "refactor", "revert", "style", "test"]
    ],
    "header-max-length": [2, "always", 100],
    "body-max-line-length": [1, "always", 120]
  }
}
