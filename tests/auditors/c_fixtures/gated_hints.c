/* Fixtures written for the tests: `ruleid` / `ok` name the line of the store below them. */
#include <stdint.h>

/* The within-word expert decides from the flags of the token it predicts. */
void hints_gated_on_target(const uint16_t *tokens, int64_t n, const uint8_t *new_word_lut,
                           uint16_t *hint_tok, float *hint_p, State *st) {
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t tok = tokens[i];
        const uint8_t starts_word = new_word_lut[tok];
        if (!starts_word && st->len > 0) {
            // ruleid: c-target-gated-hint
            hint_tok[i] = st->top;
            hint_p[i] = st->p;
        } else {
            hint_tok[i] = 0;
        }
        push(st, tok);
    }
}

/* The fix: flags of the previous token; the target only updates the state afterwards. */
void hints_from_prefix(const uint16_t *tokens, int64_t n, const uint8_t *new_word_lut,
                       uint16_t *hint_tok, State *st) {
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t tok = tokens[i];
        const uint16_t prev = i > 0 ? tokens[i - 1] : 0;
        const uint8_t starts_word = new_word_lut[prev];
        if (!starts_word && st->len > 0) {
            // ok: c-target-gated-hint
            hint_tok[i] = st->top;
        }
        const uint8_t tok_starts = new_word_lut[tok];
        update(st, tok, tok_starts);
    }
}

/* The flag goes through a helper's out-parameters (the #1420 family before its fix). */
void hints_through_helper(const int64_t *pos, int n, const int64_t *toks_, const uint8_t *bnd,
                          int32_t *out_hint, double *out_beta) {
    for (int i = 0; i < n; i++) {
        int64_t p = pos[i];
        auto t = uint16_t(toks_[p]);
        bool b = bnd && bnd[t];
        int h; double beta;
        expert_hint(b, h, beta);
        int best = -1;
        if (h >= 0) best = h;
        // ruleid: c-target-gated-hint
        out_hint[i] = best;
        out_beta[i] = beta;
        expert_update(t, b);
    }
}

/* A hashed table read with the target in the key (RULES.md §3 in C). */
void keyed_on_target(const int64_t *pos, int n, const uint16_t *stream, const uint32_t *ctx_tbl,
                     const uint32_t *full_tbl, uint64_t mask, double *p_out) {
    for (int k = 0; k < n; k++) {
        uint64_t h = context_hash(stream, pos[k]);
        auto y = static_cast<uint64_t>(stream[pos[k]]);
        uint64_t key = (h ^ (y * 2654435761ULL)) & mask;
        double num = full_tbl[key], den = ctx_tbl[h & mask];
        // ruleid: c-target-gated-hint
        p_out[k] = num / (den + 1.0);
    }
}

/* The loss of the target under a full distribution reads the target: that is scoring. */
void loss_of_target(const uint16_t *targets, int64_t n, const float *counts, float total, int V,
                    const float *model_lp, float *out_nll) {
    for (int64_t t = 0; t < n; ++t) {
        const uint16_t y = targets[t];
        float c = counts[y];
        float lp = c > 0 ? logf(c / total) : logf(1.0f / V);
        // ok: c-target-gated-hint
        out_nll[t] = -(0.5f * lp + 0.5f * model_lp[t]);
        "hint[t] = new_word_lut[y];";  /* strings and comments are not code: hint[t] = lut[y]; */
    }
}

/* Updating the state with the target before writing that position's hint. */
void update_then_hint(const uint16_t *tokens, int64_t n, State *st, uint16_t *hint) {
    for (int64_t i = 0; i < n; ++i) {
        uint16_t cur = tokens[i];
        push(st, cur);
        // ruleid: c-target-gated-hint
        hint[i] = best_next(st);
    }
}
