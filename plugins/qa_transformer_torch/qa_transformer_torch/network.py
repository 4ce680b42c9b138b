"""The networks. ``architecture=memory`` (:class:`SentenceMemory`, the default): each sentence
encoded on its own, then question-conditioned hops across clauses, trained with
:func:`support_loss` where the data names supporting sentences (its docstring).
``architecture=plain`` (:class:`QATransformer`): token embedding + positions (+ question-match
and convolutional position features) -> ``nn.TransformerEncoder`` with a padding mask ->
pooling -> one logit.

For the plain encoder, four choices make the difference between a model that learns the simple
stories within the core's default 5 epochs and one that sits at 50% memorising them (ablations
in README.md):

* **positions count back from the question.** Rows are right-padded and the core truncates the
  *start* of long stories, so the question always ends the row. Indexing the position table by
  the distance to the last real token gives the question words fixed positions and makes
  "how recent is this sentence" one learned vector per distance.
* **question match** (the exact-match feature of DrQA-style readers): each story token gets a
  learned vector saying which of the question's last words it repeats (counted from the end), so
  the mentions of the asked actor and place stand out before any attention is learned.
* **a convolutional position encoding** (as in wav2vec 2.0): a 1-D convolution over the
  embeddings lets every token see its neighbours, so a place "knows" the actor and the verb of
  its own sentence from the first step; attention is left with the long-range part.
* **a distance bias** (ALiBi-like): attention logits lose ``distance_bias`` per token of distance,
  a prior toward a token's own sentence and toward recent sentences.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from qa_core import ModelSpec
from qa_core.data.tokenizer import SEP

#: The question words the match feature tells apart, counted from the end of the row; repeats of
#: words further back share the last id. Eight covers "Is the apple in the kitchen ?" and SEP.
MATCH_WORDS = 8

#: Within-sentence positions the memory network tells apart; later words share the last one.
SENTENCE_POSITIONS = 64


#: The tokens that end a sentence: the core counts ``support`` indices by the same three.
SENTENCE_ENDS = (".", "!", "?")


def sentence_end_ids(spec: ModelSpec) -> tuple[int, ...]:
    """The ids of the sentence ends the vocabulary has (none: the story is one sentence)."""
    return tuple(spec.vocab.index(end) for end in SENTENCE_ENDS if end in spec.vocab)


#: The words that join a sentence's events into clauses ("X went to A, took B and ran to C").
CLAUSE_JOINS = (",", "and")


def clause_join_ids(spec: ModelSpec) -> tuple[int, ...]:
    return tuple(spec.vocab.index(word) for word in CLAUSE_JOINS if word in spec.vocab)


def support_loss(reads: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Attention supervision (strongly supervised memory networks), order-free.

    ``reads``: [b, hops, S] each hop's weight on each sentence (sums <= 1); ``support``: [b, k]
    supporting sentence indices, -1 padded. Support is a set and the hops' order along the chain
    is not given, so two terms: every hop's mass should fall on support sentences
    (``-log sum_{s in support} w_k[s]``), and every support sentence should be read by some hop
    (``-log(1 - prod_k (1 - w_k[s]))``). Rows without support add 0 and still count in the mean
    over the batch's rows, as in the answer's loss: so 2 x 16 accumulated rows give the gradient
    of 32 whatever support the cut dropped. A scalar.
    """
    b, _, s = reads.shape
    index = support.long()
    valid = (index >= 0) & (index < s)
    mask = torch.zeros(b, s + 1, device=reads.device, dtype=reads.dtype)
    mask.scatter_(1, torch.where(valid, index, s), 1.0)  # invalid ones land in a dropped column
    mask = mask[:, :s]
    has = mask.sum(1) > 0
    eps = 1e-6
    on_support = -torch.log((reads * mask.unsqueeze(1)).sum(-1).clamp(min=eps, max=1.0)).mean(1)  # [b]
    missed = torch.log1p(-reads.clamp(max=1.0 - eps)).sum(1)  # [b, S]: log prod_k (1 - w_k)
    found = -torch.log((-torch.expm1(missed)).clamp(min=eps))
    covered = (found * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    per_row = (on_support + covered) * has
    return per_row.sum() / b


class QATransformer(nn.Module):
    """Reads ``story SEP question`` token ids and returns the logit of "yes".

    ``forward(tokens, lengths)`` builds the padding mask from the lengths the core provides, so
    attention never looks at padding and pooling reads real tokens only. A batch may be narrower
    than ``max_len`` (the caller cuts trailing padding): nothing depends on the width.
    """

    def __init__(
        self,
        vocab_size: int,
        max_len: int,
        d_model: int,
        heads: int,
        layers: int,
        ff_dim: int,
        dropout: float,
        pooling: str = "last",
        question_match: bool = True,
        conv_kernel: int = 9,
        distance_bias: float = 0.05,
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.pooling = pooling
        self.distance_bias = distance_bias
        self.scale = math.sqrt(d_model)
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.position = nn.Embedding(max_len, d_model)
        # Row 0: a story word the question does not repeat; 1..MATCH_WORDS: a story word equal to
        # that question word (counted from the end); the last row: SEP and the question itself.
        self.match = nn.Embedding(MATCH_WORDS + 2, d_model) if question_match else None
        self.conv = nn.Conv1d(d_model, d_model, conv_kernel, padding=conv_kernel // 2) if conv_kernel else None
        # The CLS vector is prepended and takes no position: max_len stays the real tokens a row holds.
        self.cls = nn.Parameter(torch.zeros(1, 1, d_model)) if pooling == "cls" else None
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model,
            heads,
            ff_dim,
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,  # pre-norm: stable at the learning rates a small model wants
            # No biases: modern practice, a little faster, and it keeps torch's inference fast
            # path (which mishandles float attention masks, seen with torch 2.13) out of the way.
            bias=False,
        )
        # Nested tensors need post-norm layers; the padding mask does the same job here.
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 1)
        # 0..max_len-1, for masks and distances; not a weight, so not in the state_dict.
        self.register_buffer("steps", torch.arange(max_len), persistent=False)
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)
        # Unit scale like the scaled token embeddings: positions matter from the first step.
        nn.init.normal_(self.position.weight, std=1.0)
        with torch.no_grad():
            self.embed.weight[pad_id].zero_()

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens: long [b, t], right-padded; lengths: [b] real tokens per row (>= 1). Returns logits [b]."""
        steps = self.steps[: tokens.shape[1]]
        padding = steps >= lengths.unsqueeze(1)  # [b, t], True at padding
        from_end = (lengths.unsqueeze(1) - 1 - steps).clamp(min=0)  # 0 at the row's last token
        x = self.embed(tokens) * self.scale + self.position(from_end)
        if self.match is not None:
            x = x + self.match(self.match_ids(tokens, lengths, padding))
        if self.conv is not None:
            x = x.masked_fill(padding.unsqueeze(-1), 0.0)  # zeros, as the conv's own padding
            x = x + self.conv(x.transpose(1, 2)).transpose(1, 2)
        if self.cls is not None:
            x = torch.cat((self.cls.expand(x.shape[0], -1, -1), x), dim=1)
            padding = torch.cat((padding.new_zeros(x.shape[0], 1), padding), dim=1)
        if self.distance_bias:
            # Float masks on both sides: torch merges them into one additive mask per head.
            keys = torch.zeros(padding.shape, dtype=x.dtype, device=x.device).masked_fill(padding, float("-inf"))
            x = self.encoder(self.dropout(x), mask=self.distance_mask(x.shape[1], x), src_key_padding_mask=keys)
        else:
            x = self.encoder(self.dropout(x), src_key_padding_mask=padding)
        if self.pooling == "last":  # the token that ends the question
            pooled = x[torch.arange(x.shape[0], device=x.device), lengths - 1]
        elif self.pooling == "cls":
            pooled = x[:, 0]
        else:
            keep = (~padding).unsqueeze(-1).to(x.dtype)
            pooled = (x * keep).sum(dim=1) / keep.sum(dim=1)
        return self.head(pooled).squeeze(-1)

    def distance_mask(self, width: int, like: torch.Tensor) -> torch.Tensor:
        """Additive [t, t] attention bias ``-distance_bias * |i - j|`` (ALiBi-like, every head).

        A prior, not a limit: nearby tokens (a sentence's own words) and recent sentences start
        out favoured, which is what binding an actor to a place and finding its latest move
        need; content scores can still reach far back.
        """
        steps = torch.arange(width, device=like.device, dtype=like.dtype)
        mask = (steps.unsqueeze(0) - steps.unsqueeze(1)).abs_().mul_(-self.distance_bias)
        if self.cls is not None:  # the CLS vector sits outside the text: no distance to it
            mask[0, :] = 0.0
            mask[:, 0] = 0.0
        return mask

    @staticmethod
    def match_ids(tokens: torch.Tensor, lengths: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        """[b, t] ids: which of the question's last MATCH_WORDS tokens each token repeats.

        The question is everything after the last SEP. Its last words are gathered into a
        [b, MATCH_WORDS] table (one gather), compared with every token ([b, t, MATCH_WORDS]) and
        the nearest-to-the-end match wins. SEP and the question get MATCH_WORDS + 1, padding and
        unrepeated story words 0.
        """
        back = torch.arange(MATCH_WORDS, device=tokens.device)
        index = (lengths.unsqueeze(1) - 1 - back).clamp(min=0)  # [b, K] positions of the last words
        last_words = tokens.gather(1, index)
        # Only real question words count: after the row's last SEP, inside the row.
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        sep_at = torch.where(tokens == SEP, positions, -1).amax(1, keepdim=True)  # -1: no question
        valid = (index > sep_at) & (back < lengths.unsqueeze(1)) & (sep_at >= 0)
        same = (tokens.unsqueeze(2) == last_words.unsqueeze(1)) & valid.unsqueeze(1)  # [b, t, K]
        # argmax finds the first True: the word nearest to the end; +1 keeps 0 for "none".
        ids = torch.where(same.any(-1), same.to(torch.uint8).argmax(-1) + 1, 0)
        # The question's own words get one id of their own: a story's "Mary" must not look
        # like the question's "Mary" (positions already tell the question words apart).
        in_question = (positions >= sep_at) & (sep_at >= 0)
        ids = torch.where(in_question, MATCH_WORDS + 1, ids)
        return ids.masked_fill(padding, 0)


class SentenceMemory(nn.Module):
    """``architecture=memory``: a sentence-level reader that follows a chain of hops.

    1. **Sentences.** The row ``story SEP question`` is cut at sentence ends into a [b, S, L]
       grid (one scatter, no Python loop per example); a small shared Transformer encoder reads
       every sentence on its own, with within-sentence positions and the question-match
       feature, so a token's state says who did what to it in its own sentence.
    2. **Clauses.** A sentence holds several events ("Mary went to the hall, took the cup and
       Fred ran to the park"): the token states move to a [b, C, L'] grid of clauses (cut at
       ",", "and" and sentence ends), in story order, so "most recent" is exact between
       events. Each clause gets one more slot, its **subject**: the first word of the latest
       clause of its sentence that names one (a learned per-word "names a subject" gate and a
       last-write-wins scan inside the sentence), so "... and took the cup" knows it is Mary.
    3. **Hops.** Each hop asks one question of every clause at once: per head, attention over
       the clause's slots plus a learned *null* slot, times a gate on the clause's kind of event;
       ``(1 - p(null)) * gate`` is how much the clause answers the query. A last-write-wins scan
       keeps the **most recent** answering clause (``g_c * prod_{c' > c} (1 - g_c')``, a reverse
       cumulative sum in log space), or, by a learned per-head switch, the most recent one
       **before the previous hop's** (where a dropped thing lies: where its dropper was then).
       The words a hop read become an exact-match **pointer** for the next: each token scores
       how much the previous read pointed at the same word, so hop 2 finds the holder hop 1
       named without learning to compare names. The read updates the query (residual + norm).
    4. **Answer.** An MLP over the final query, the question vector and, per hop, how much the
       read pointed at each of the question's last words (did the chain end at the asked place).

    Cost is linear in the story (one pass of a short encoder over sentences, ``hops`` reads
    over clauses, a [C, C] scan per hop), where the plain encoder's attention is quadratic in
    the row.
    """

    def __init__(
        self,
        vocab_size: int,
        end_ids: tuple[int, ...],
        sep_id: int,
        d_model: int,
        heads: int,
        layers: int,
        ff_dim: int,
        dropout: float,
        hops: int,
        question_match: bool = True,
        pad_id: int = 0,
        clause_ids: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        self.sep_id, self.pad_id, self.vocab_size = sep_id, pad_id, vocab_size
        # Sentence and clause ends as buffers (they move with the module; not in the state_dict).
        self.register_buffer("end_ids", torch.tensor(end_ids or (-1,), dtype=torch.long), persistent=False)
        self.register_buffer("clause_ids", torch.tensor((*end_ids, *clause_ids) or (-1,), dtype=torch.long), persistent=False)
        self.heads, self.hops = heads, hops
        self.scale = math.sqrt(d_model)
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.word_position = nn.Embedding(SENTENCE_POSITIONS, d_model)
        self.match = nn.Embedding(MATCH_WORDS + 2, d_model) if question_match else None
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, ff_dim, dropout, activation="gelu", batch_first=True, norm_first=True, bias=False
        )
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.subject = nn.Embedding(vocab_size, 1)  # logit: "a clause starting with this word names its subject"
        self.subject_slot = nn.Parameter(torch.zeros(d_model))  # marks the subject slot
        self.start = nn.Linear(d_model, d_model)  # question vector -> first query
        self.query = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(hops))
        self.keys = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(hops))
        self.values = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(hops))
        self.kind_query = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(hops))
        self.kind_key = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(hops))
        self.read_query = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(hops))
        self.read_keys = nn.ModuleList(nn.Linear(d_model, d_model) for _ in range(hops))
        self.kind_bias = nn.Parameter(torch.full((hops, 1, 1), 2.0))  # gates start open
        self.null = nn.Parameter(torch.zeros(hops, 1, 1))  # the "this clause says nothing" logit
        self.follow = nn.Parameter(torch.full((hops, 1, 1, 1), 4.0))  # weight of the pointer match
        # From hop 2 on: the latest answering clause, or the latest before the previous hop's read
        # (hop 1 has no previous read; a weight without a gradient would stall DDP).
        self.when = nn.ModuleList(nn.Linear(d_model, 1) for _ in range(hops - 1))
        # Hop 1's pointer: a learned mix of the question's last words (which one names the thing asked about).
        self.asked = nn.Parameter(torch.zeros(MATCH_WORDS))
        self.update = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(hops))
        self.head = nn.Sequential(
            nn.Linear(2 * d_model + hops * MATCH_WORDS, d_model), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_model, 1)
        )
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)
        nn.init.zeros_(self.subject.weight)
        for when in self.when:  # start with "the latest": "before the previous read" is the rarer case
            nn.init.constant_(when.bias, 3.0)
        with torch.no_grad():
            self.embed.weight[pad_id].zero_()

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, with_reads: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """tokens: long [b, t], right-padded; lengths: [b] real tokens per row. Returns logits [b],
        and with ``with_reads`` also each hop's weight on each sentence, [b, hops, S] (mean over
        heads; what :func:`support_loss` supervises)."""
        cut = self.segment(tokens, lengths)
        b, s, width = cut.grid.shape
        states = self.encode(cut.grid.view(b * s, width), cut.match.view(b * s, width)).view(b, s, width, -1)
        q_states = self.encode(cut.question, cut.question_match)
        q_real = (cut.question != self.pad_id).unsqueeze(-1).to(q_states.dtype)
        q = (q_states * q_real).sum(1) / q_real.sum(1).clamp(min=1.0)
        memory = self.clause_memory(cut, states)
        u = self.start(q)
        reads, hits, previous = [], [], None
        pointer = self.question_pointer(cut, memory)
        for hop in range(self.hops):
            read, previous, bag = self.read(hop, u, memory, pointer, previous)
            u = self.update[hop](u + read)
            reads.append(previous)
            pointer = self.pointer(bag, memory)
            hits.append(bag.gather(1, cut.question_words) * cut.question_real)  # [b, MATCH_WORDS]
        logits = self.head(torch.cat((u, q, *hits), dim=-1)).squeeze(-1)
        if not with_reads:
            return logits
        per_clause = torch.stack(reads, 1)  # [b, hops, C]; support names sentences: sum per sentence
        per_sentence = per_clause.new_zeros(b, self.hops, s)
        per_sentence.scatter_add_(2, cut.clause_sentence.unsqueeze(1).expand(-1, self.hops, -1), per_clause)
        return logits, per_sentence

    def encode(self, rows: torch.Tensor, match: torch.Tensor) -> torch.Tensor:
        """The shared sentence encoder over [n, L] token rows (a row of padding stays harmless)."""
        steps = torch.arange(rows.shape[1], device=rows.device).clamp(max=SENTENCE_POSITIONS - 1)
        x = self.embed(rows) * self.scale + self.word_position(steps)
        if self.match is not None:
            x = x + self.match(match)
        padding = rows == self.pad_id
        padding[:, 0] = False  # an all-padding row would make attention NaN; its output is unused
        return self.encoder(self.dropout(x), src_key_padding_mask=padding)

    def clause_memory(self, cut: "Segments", states: torch.Tensor) -> "ClauseMemory":
        """Token states moved into clause rows, plus each clause's subject slot."""
        b, c, width = cut.clause_tokens.shape
        rows, sentence, within, clause, within_clause = cut.where
        slots = states.new_zeros(b, c, width, states.shape[-1])
        slots[rows, clause, within_clause] = states[rows, sentence, within]
        first_ids = cut.clause_tokens[:, :, 0]
        names = torch.sigmoid(self.subject(first_ids).squeeze(-1)) * cut.clause_real  # [b, C]
        # subject_of[b, c, c']: clause c's subject is clause c''s first word (c' <= c, same sentence).
        keep = torch.log1p(-names.clamp(max=1.0 - 1e-6)).cumsum(1)  # [b, C]
        same = (cut.clause_sentence.unsqueeze(2) == cut.clause_sentence.unsqueeze(1)) & torch.ones(c, c, dtype=torch.bool, device=slots.device).tril()
        gap = torch.where(same, keep.unsqueeze(2) - keep.unsqueeze(1), float("-inf"))
        subject_of = names.unsqueeze(1) * gap.exp()
        subject = torch.einsum("bcx,bxd->bcd", subject_of, slots[:, :, 0]) + self.subject_slot
        slots = torch.cat((slots, subject.unsqueeze(2)), dim=2)  # [b, C, L'+1, d]
        hidden = torch.cat((cut.clause_tokens == self.pad_id, ~cut.clause_real.unsqueeze(-1)), dim=2)
        own = (~hidden[:, :, :-1]).unsqueeze(-1).to(slots.dtype)
        summary = (slots[:, :, :-1] * own).sum(2) / own.sum(2).clamp(min=1.0)  # [b, C, d]
        return ClauseMemory(slots, hidden, cut.clause_real, summary, cut.clause_tokens, subject_of)

    def read(self, hop: int, u: torch.Tensor, memory: "ClauseMemory", pointer: torch.Tensor | None, previous: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """One hop: the read ([b, d]), each clause's weight in it ([b, C]), and the bag of words
        it read ([b, vocab]).

        Finding and reading are two attentions, as keys and values are in key-value memories:
        a clause is *found* by what it shares with the query (hop 2 finds "Fred ran to the
        park" by "Fred", which hop 1 read), and *read* for what it adds ("park").
        """
        slots = memory.slots
        b, c, width, d = slots.shape
        h, dh = self.heads, d // self.heads
        find = (self.keys[hop](slots) * self.query[hop](u).view(b, 1, 1, d)).sum(-1) / math.sqrt(d)  # [b, C, L'+1]
        if pointer is not None:
            find = find + self.follow[hop] * pointer
        find = find.masked_fill(memory.hidden, float("-inf"))
        null = self.null[hop].expand(b, c, 1)
        mentioned = 1.0 - torch.cat((find, null), dim=2).softmax(dim=2)[:, :, -1]  # [b, C]
        kind = (self.kind_key[hop](memory.summary) * self.kind_query[hop](u).unsqueeze(1)).sum(-1) / math.sqrt(d)
        answers = mentioned * torch.sigmoid(kind + self.kind_bias[hop]) * memory.real
        recent = self.last_write_wins(answers)
        if previous is not None:
            latest = torch.sigmoid(self.when[hop - 1](u))  # [b, 1]: the latest, or the latest before the previous read
            recent = latest * recent + (1 - latest) * self.latest_before(answers.unsqueeze(-1), previous).squeeze(-1)
        keys = self.read_keys[hop](slots).view(b, c, width, h, dh)
        look = (keys * self.read_query[hop](u).view(b, 1, 1, h, dh)).sum(-1) / math.sqrt(dh)
        # -1e4, not -inf: a padding clause hides every slot, and its read is weighted 0 anyway.
        look = look.masked_fill(memory.hidden.unsqueeze(-1), -1e4).softmax(dim=2)  # [b, C, L'+1, H]
        token_weight = look * recent.view(b, c, 1, 1)
        values = self.values[hop](slots).view(b, c, width, h, dh)
        read = torch.einsum("bclh,bclhd->bhd", token_weight, values).reshape(b, d)
        return read, recent, self.bag(token_weight.mean(-1), memory)

    def bag(self, mass: torch.Tensor, memory: "ClauseMemory") -> torch.Tensor:
        """[b, C, L'+1] read mass per slot -> [b, vocab] mass per word (a subject slot's mass goes
        to the first words of the clauses it stands for)."""
        b = mass.shape[0]
        to_first = torch.einsum("bc,bcx->bx", mass[:, :, -1], memory.subject_of)  # [b, C]
        words = torch.cat((memory.tokens, memory.tokens[:, :, :1]), dim=2).reshape(b, -1)
        spread = torch.cat((mass[:, :, :-1], to_first.unsqueeze(-1)), dim=2).reshape(b, -1)
        return mass.new_zeros(b, self.vocab_size).scatter_add_(1, words, spread)

    def question_pointer(self, cut: "Segments", memory: "ClauseMemory") -> torch.Tensor:
        """Hop 1's pointer: the question's last words, weighted by a learned mix of positions."""
        mix = self.asked.softmax(0) * cut.question_real  # [b, MATCH_WORDS]
        bag = mix.new_zeros(mix.shape[0], self.vocab_size).scatter_add_(1, cut.question_words, mix)
        return self.pointer(bag, memory)

    def pointer(self, bag: torch.Tensor, memory: "ClauseMemory") -> torch.Tensor:
        """[b, C, L'+1]: how much the previous read pointed at each slot's word."""
        b, c, width = memory.tokens.shape
        own = bag.gather(1, memory.tokens.reshape(b, -1)).view(b, c, width)
        subject = torch.einsum("bcx,bx->bc", memory.subject_of, own[:, :, 0])
        return torch.cat((own, subject.unsqueeze(-1)), dim=2)

    @staticmethod
    def last_write_wins(answers: torch.Tensor) -> torch.Tensor:
        """[b, S, ...] answer strengths in story order -> the weight of each unit's read:
        ``g_s * prod_{s' > s} (1 - g_s')``, the chance it answers and no later one does."""
        keep = torch.log1p(-answers.clamp(max=1.0 - 1e-6))
        later = keep.flip(1).cumsum(1).flip(1) - keep  # sum over s' > s
        return answers * later.exp()

    @staticmethod
    def latest_before(answers: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """[b, C, H] answers, [b, C] the previous hop's clause weights -> the weight of clause
        c as the most recent answering clause before the previous read:
        ``sum_t prev_t g_c prod_{c < c' < t} (1 - g_c')``, for c < t."""
        c = answers.shape[1]
        keep = torch.log1p(-answers.clamp(max=1.0 - 1e-6))
        upto = keep.cumsum(1)  # [b, C, H] inclusive
        before_t = upto - keep  # sum over c' < t
        gap = before_t.unsqueeze(1) - upto.unsqueeze(2)  # [b, c, t, H]: sum over c < c' < t
        earlier = torch.ones(c, c, dtype=torch.bool, device=answers.device).triu(1).view(1, c, c, 1)
        scan = torch.where(earlier, gap, float("-inf")).exp()
        return answers * torch.einsum("bcth,bt->bch", scan, previous)

    def segment(self, tokens: torch.Tensor, lengths: torch.Tensor) -> "Segments":
        """Cut rows into a [b, S, L] sentence grid, a [b, C, L'] clause grid (clauses end at ",",
        "and" and the sentence ends) and a [b, Q] question, with match ids and the scatter
        indices between them."""
        b, t = tokens.shape
        steps = torch.arange(t, device=tokens.device)
        real = steps < lengths.unsqueeze(1)
        sep_at = torch.where((tokens == self.sep_id) & real, steps, -1).amax(1, keepdim=True)
        story = real & (steps < sep_at)
        in_question = real & (steps > sep_at)
        match = QATransformer.match_ids(tokens, lengths, ~real)
        sentence, within = self._runs(torch.isin(tokens, self.end_ids), steps)
        clause, within_clause = self._runs(torch.isin(tokens, self.clause_ids), steps)
        rows = torch.arange(b, device=tokens.device).unsqueeze(1).expand(b, t)
        where = (rows[story], sentence[story], within[story])
        grid = tokens.new_full((b, int(sentence.masked_fill(~story, 0).amax()) + 1, int(within.masked_fill(~story, 0).amax()) + 1), self.pad_id)
        grid_match = torch.zeros_like(grid)
        grid[where] = tokens[story]
        grid_match[where] = match[story]
        n_clauses = int(clause.masked_fill(~story, 0).amax()) + 1
        clause_tokens = tokens.new_full((b, n_clauses, int(within_clause.masked_fill(~story, 0).amax()) + 1), self.pad_id)
        clause_tokens[rows[story], clause[story], within_clause[story]] = tokens[story]
        clause_sentence = tokens.new_zeros(b, n_clauses)  # the sentence each clause belongs to
        clause_sentence[rows[story], clause[story]] = sentence[story]
        q_pos = (steps - sep_at - 1).clamp(min=0)
        question = tokens.new_full((b, max(int(q_pos.masked_fill(~in_question, 0).amax()) + 1, 1)), self.pad_id)
        question_match = torch.zeros_like(question)
        question[rows[in_question], q_pos[in_question]] = tokens[in_question]
        question_match[rows[in_question], q_pos[in_question]] = match[in_question]
        back = (lengths.unsqueeze(1) - 1 - torch.arange(MATCH_WORDS, device=tokens.device)).clamp(min=0)
        return Segments(
            grid, grid_match, question, question_match,
            where=(*where, clause[story], within_clause[story]),
            clause_tokens=clause_tokens,
            clause_real=(clause_tokens != self.pad_id).any(-1),
            clause_sentence=clause_sentence,
            question_words=tokens.gather(1, back).long(),
            question_real=(back > sep_at).to(torch.float32),
        )

    @staticmethod
    def _runs(ends: torch.Tensor, steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[b, t] True at tokens that close a unit -> each token's unit index and its position
        in the unit (a unit starts after each closing token)."""
        after = torch.zeros_like(ends)
        after[:, 1:] = ends[:, :-1]
        index = after.long().cumsum(1)
        starts = torch.where(after | (steps == 0), steps, 0).cummax(1).values
        return index, steps - starts


class Segments(NamedTuple):
    """:meth:`SentenceMemory.segment`'s cut of a batch."""

    grid: torch.Tensor  # [b, S, L] sentence token ids
    match: torch.Tensor  # [b, S, L] their question-match ids
    question: torch.Tensor  # [b, Q]
    question_match: torch.Tensor  # [b, Q]
    #: Per story token: (row, sentence, position in it, clause, position in the clause).
    where: tuple[torch.Tensor, ...]
    clause_tokens: torch.Tensor  # [b, C, L'] clause token ids
    clause_real: torch.Tensor  # bool [b, C]
    clause_sentence: torch.Tensor  # long [b, C]
    question_words: torch.Tensor  # long [b, MATCH_WORDS]: the row's last words
    question_real: torch.Tensor  # float [b, MATCH_WORDS]: 1 where that word is in the question


class ClauseMemory(NamedTuple):
    """What the hops read: clause slots (own tokens + the subject slot) and their masks."""

    slots: torch.Tensor  # [b, C, L'+1, d]
    hidden: torch.Tensor  # bool [b, C, L'+1]: padding
    real: torch.Tensor  # bool [b, C]
    summary: torch.Tensor  # [b, C, d] mean of the clause's own token states
    tokens: torch.Tensor  # [b, C, L'] ids
    subject_of: torch.Tensor  # [b, C, C]


def make_network(spec: ModelSpec) -> nn.Module:
    """The network ``spec`` describes (shapes from the data, the rest from ``spec.params``)."""
    p = spec.params
    if p.get("architecture", "plain") == "memory":
        return SentenceMemory(
            vocab_size=spec.vocab_size,
            end_ids=sentence_end_ids(spec),
            clause_ids=clause_join_ids(spec),
            sep_id=spec.sep_id,
            d_model=p["d_model"],
            heads=p["heads"],
            layers=p["layers"],
            ff_dim=p["ff_dim"],
            dropout=p["dropout"],
            hops=p["hops"],
            question_match=p["question_match"],
            pad_id=spec.pad_id,
        )
    return QATransformer(
        vocab_size=spec.vocab_size,
        max_len=spec.max_len,
        d_model=p["d_model"],
        heads=p["heads"],
        layers=p["layers"],
        ff_dim=p["ff_dim"],
        dropout=p["dropout"],
        pooling=p["pooling"],
        question_match=p["question_match"],
        conv_kernel=p["conv_kernel"],
        distance_bias=p["distance_bias"],
        pad_id=spec.pad_id,
    )
