"""The networks. ``architecture=memory`` (:class:`EntityHops`, the default): the story cut into
sentences, a chain of hops that follows the asked entity from word to word (object -> holder or
container -> holder -> place) with a Transformer encoder reading each sentence, trained with
:func:`support_loss` where the data names supporting sentences (its docstring); the torch
sibling of the LSTM plugin's memory network.
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

#: The memory network's encoder reads a batch's sentences in this many groups, shortest first,
#: each group cut to its own longest sentence: one call would pad every sentence to the batch's
#: longest (half the grid's cells were padding on the default data). Same outputs; 3 groups
#: took 16% less CPU than 1 per full-length training step, 4 no less than 3 (README.md).
SENTENCE_GROUPS = 3


#: The tokens that end a sentence: the core counts ``support`` indices by the same three.
SENTENCE_ENDS = (".", "!", "?")


def sentence_end_ids(spec: ModelSpec) -> tuple[int, ...]:
    """The ids of the sentence ends the vocabulary has (none: the story is one sentence)."""
    return tuple(spec.vocab.index(end) for end in SENTENCE_ENDS if end in spec.vocab)


def support_loss(reads: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """Attention supervision (strongly supervised memory networks), order-free: a record's
    support is a set, the hops' order along the chain is the model's.

    ``reads``: [b, hops, S] each hop's weight on each sentence (sums <= 1); ``support``: [b, k]
    supporting sentence indices, -1 padded. Two terms, as the LSTM plugin's ``SupportLoss``:
    every support sentence is read by some hop (``-log(1 - prod_k (1 - w_k[s]))``), and no hop
    reads outside the support (``-log(1 - sum_{s not in support} w_k[s])``: a hop may read
    nothing, once the chain has reached a place). Rows without support add 0 and still count in
    the mean over the batch's rows, as in the answer's loss: so 2 x 16 accumulated rows give the
    gradient of 32 whatever support the cut dropped. A scalar.
    """
    b, _, s = reads.shape
    index = support.long()
    valid = (index >= 0) & (index < s)
    mask = torch.zeros(b, s + 1, device=reads.device, dtype=reads.dtype)
    mask.scatter_(1, torch.where(valid, index, s), 1.0)  # invalid ones land in a dropped column
    mask = mask[:, :s]
    has = mask.sum(1) > 0
    eps = 1e-6
    outside = (reads * (1.0 - mask).unsqueeze(1)).sum(-1)  # [b, hops]
    within = -torch.log((1.0 - outside).clamp(min=eps)).mean(1)  # [b]
    missed = torch.log1p(-reads.clamp(max=1.0 - eps)).sum(1)  # [b, S]: log prod_k (1 - w_k)
    found = -torch.log((-torch.expm1(missed)).clamp(min=eps))
    covered = (found * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    per_row = (within + covered) * has
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


def last_write_wins(gates: torch.Tensor) -> torch.Tensor:
    """``[b, T]`` write strengths in story order -> each position's read weight
    ``g_t * prod_{t' > t} (1 - g_t')``: the chance it writes and nothing later does (a reverse
    exclusive cumulative sum in log space, all positions at once)."""
    keep = torch.log1p(-gates.clamp(max=1.0 - 1e-6))
    later = keep.flip(1).cumsum(1).flip(1) - keep  # sum over t' > t
    return gates * later.exp()


class SentenceCut(NamedTuple):
    """:func:`cut_sentences`' view of a batch."""

    grid: torch.Tensor  # long [b, S, L]: sentence s of a row is its s-th, counted from the row's start
    question: torch.Tensor  # long [b, Q]
    question_words: torch.Tensor  # long [b, MATCH_WORDS]: the row's last words, the last first
    question_real: torch.Tensor  # float [b, MATCH_WORDS]: 1 where that word is in the question


def cut_sentences(tokens: torch.Tensor, lengths: torch.Tensor, sep_id: int, end_ids: torch.Tensor, pad_id: int) -> SentenceCut:
    """Right-padded ``story SEP question`` rows -> the story cut at sentence ends into a
    ``[b, S, L]`` grid and the question ``[b, Q]``: one scatter each, no Python per example.

    Sentences are counted by sentence ends from the row's first token, as ``Batch.support``
    counts them; ``S``, ``L`` and ``Q`` are the batch's own, so short stories cost what they hold.
    """
    b, t = tokens.shape
    steps = torch.arange(t, device=tokens.device)
    real = steps < lengths.unsqueeze(1)
    sep_at = torch.where((tokens == sep_id) & real, steps, -1).amax(1, keepdim=True)
    story, in_question = real & (steps < sep_at), real & (steps > sep_at)
    ends = torch.isin(tokens, end_ids)
    after = torch.zeros_like(ends)
    after[:, 1:] = ends[:, :-1]
    sentence = after.long().cumsum(1)
    within = steps - torch.where(after | (steps == 0), steps, 0).cummax(1).values
    rows = torch.arange(b, device=tokens.device).unsqueeze(1).expand(b, t)
    shape = (b, int(sentence.masked_fill(~story, 0).amax()) + 1, int(within.masked_fill(~story, 0).amax()) + 1)
    grid = tokens.new_full(shape, pad_id)
    grid[rows[story], sentence[story], within[story]] = tokens[story]
    at = (steps - sep_at - 1).clamp(min=0)
    question = tokens.new_full((b, max(int(at.masked_fill(~in_question, 0).amax()) + 1, 1)), pad_id)
    question[rows[in_question], at[in_question]] = tokens[in_question]
    back = (lengths.unsqueeze(1) - 1 - torch.arange(MATCH_WORDS, device=tokens.device)).clamp(min=0)
    return SentenceCut(grid, question, tokens.gather(1, back), (back > sep_at).float())


class EntityHops(nn.Module):
    """``architecture=memory``: a chain of hops that follows the asked entity up its containment
    chain (object -> container or holder -> holder -> place), one link per hop, as a soft
    pointer over the story's words. The torch sibling of the LSTM plugin's ``EntityHops``, with
    a Transformer encoder where that one has a BiLSTM.

    * **The asked entity and place.** A small encoder reads the question; two attentions over
      its words (their states and their position from the end) pick the asked entity ("teapot"
      in "Is the teapot in the library ?"; only among the question words the story mentions)
      and the asked place. Every story word then gets two
      exact-match scores: how much it *is* the asked entity, and the asked place (word
      identity, compared by id: nothing to learn about names).
    * **A hop.** The sentence encoder reads each sentence on its own (within-sentence
      positions), its input the word embeddings plus the current entity and place scores of
      every word and of its sentence (their maximum over the sentence), so at "library" in
      "Irene walked to the school and ran to the library" it can tell that the marked entity
      went there. The sentence-level scores are what let the encoder start: without them its
      attention must first learn to look for a marked word, and on one seed of three the
      hops stayed at chance for five epochs (measured; README.md). A gate says how much each word is the entity's *new
      parent* event, and :func:`last_write_wins` over the words in story order keeps the most
      recent one (later clauses override earlier ones within a sentence as later sentences
      do). From that word a pointer over its sentence picks the parent word; the words equal to
      it (by id) become the next hop's entity.
    * **Features.** Per hop, a summary of what it found, the weight it chose (0 once the chain
      has reached a place, which has no parent), how much of the parent it points at is the
      asked place, and how much of it is each of the question's last words (by id): the answer
      MLP reads "the last hop that found something found the asked place".

    The encoder, gate and pointer are shared by every hop (each asks the same question: "where
    did the marked entity go?"). ``forward(..., with_reads=True)`` also returns each hop's
    choice summed per sentence, what :func:`support_loss` supervises. The gate bias starts at
    -4: every word writes a little (~2%), so the first reads reach the whole story instead of
    the last few words. The pointer arithmetic runs in float32 under any autocast: the
    last-write-wins products over ~100 words would lose the early ones in bfloat16.
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
        pad_id: int = 0,
    ) -> None:
        super().__init__()
        self.sep_id, self.pad_id, self.vocab_size, self.hops = sep_id, pad_id, vocab_size, hops
        # Sentence ends as a buffer (it moves with the module; not in the state_dict).
        self.register_buffer("end_ids", torch.tensor(end_ids or (-1,), dtype=torch.long), persistent=False)
        self.scale = math.sqrt(d_model)
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.word_position = nn.Embedding(SENTENCE_POSITIONS, d_model)
        self.mark = nn.Linear(4, d_model)  # (entity score, asked-place score) -> the reader's input
        self.dropout = nn.Dropout(dropout)

        def encoder(depth: int) -> nn.TransformerEncoder:
            layer = nn.TransformerEncoderLayer(
                d_model, heads, ff_dim, dropout, activation="gelu", batch_first=True, norm_first=True, bias=False
            )
            return nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)

        self.question_reader = encoder(1)
        self.reader = encoder(layers)
        self.entity_pick = nn.Linear(d_model + MATCH_WORDS, 1)
        self.place_pick = nn.Linear(d_model + MATCH_WORDS, 1)
        width = d_model + 4  # a word's state beside its four scores
        self.gate = nn.Sequential(nn.Linear(width, d_model), nn.ReLU(), nn.Linear(d_model, 1))
        self.point_from = nn.Linear(width, d_model)
        self.point_to = nn.Linear(width, d_model)
        self.summary = nn.Linear(width, 8)
        self.head = nn.Sequential(nn.Linear(hops * (10 + MATCH_WORDS), 2 * d_model), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * d_model, 1))
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)
        nn.init.constant_(self.gate[-1].bias, -4.0)
        with torch.no_grad():
            self.embed.weight[pad_id].zero_()

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, with_reads: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """tokens: long [b, t], right-padded; lengths: [b] real tokens per row. Returns logits [b],
        and with ``with_reads`` also each hop's weight on each sentence, [b, hops, S]."""
        cut = cut_sentences(tokens, lengths, self.sep_id, self.end_ids, self.pad_id)
        grid = cut.grid
        b, s, width = grid.shape
        entity, at_place = self.asked(cut.question, grid.view(b, s * width))
        steps = torch.arange(width, device=grid.device).clamp(max=SENTENCE_POSITIONS - 1)
        vectors = self.embed(grid) * self.scale + self.word_position(steps)  # [b, S, L, d]
        real = (grid != self.pad_id).float()
        features, reads = [], []
        for _ in range(self.hops):
            # The asked place reaches the hops without its gradient: the support loss would
            # otherwise bend the place pointer into a second entity pointer (measured in the LSTM).
            marks = torch.stack((entity, at_place.detach()), -1).view(b, s, width, 2)
            # ... and whether the word's sentence mentions them at all: a transformer's attention
            # must first learn to look for a marked word; with this the gate can use it at once.
            marks = torch.cat((marks, marks.amax(2, keepdim=True).expand_as(marks)), -1)
            states = self.read_sentences(self.dropout(vectors + self.mark(marks.to(vectors.dtype))), grid)
            view = torch.cat((states, marks.to(states.dtype)), -1)  # [b, S, L, d + 4]
            gate, point, summary = self.gate(view), self.point(view, grid), self.summary(view)
            with torch.autocast(grid.device.type, enabled=False):
                mention = last_write_wins(torch.sigmoid(gate.float().squeeze(-1)).mul(real).view(b, -1)).view(b, s, width)
                parent = torch.einsum("bsl,bslm->bsm", mention, point.float()).reshape(b, -1)
                # The parent word's identity, spread to every mention of it: the next hop's
                # entity; never the current entity again (a parent differs from its child).
                words = grid.view(b, -1)
                bag = parent.new_zeros(b, self.vocab_size).scatter_add_(1, words, parent)
                found = torch.tanh(torch.einsum("bsl,bslk->bk", mention, summary.float()))
                # How much of the parent is each of the question's last words: the answer's
                # direct route to "the chain ended at the word before '?'", learnable before
                # the place pointer is.
                hits = bag.gather(1, cut.question_words) * cut.question_real
                features += [found, mention.sum((1, 2)).unsqueeze(1), (parent * at_place).sum(1, keepdim=True), hits]
                reads.append(mention.sum(-1))
                entity = bag.gather(1, words) * (1.0 - entity) * real.view(b, -1)
        logits = self.head(torch.cat(features, -1)).squeeze(-1)
        return (logits, torch.stack(reads, 1)) if with_reads else logits

    def asked(self, question: torch.Tensor, words: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """How much each story word ([b, T] ids) is the asked entity and the asked place: float32
        [b, T] each, from two attentions over the question's words."""
        padding = question == self.pad_id
        x = self.embed(question) * self.scale + self.word_position(torch.arange(question.shape[1], device=question.device).clamp(max=SENTENCE_POSITIONS - 1))
        states = self.question_reader(x, src_key_padding_mask=padding)
        # Each word's position from the end, one-hot, beside its state: "the word before '?'" is
        # one weight to learn, not a pattern for the encoder to find.
        count = (~padding).sum(1, keepdim=True)
        back = (count - 1 - torch.arange(question.shape[1], device=question.device)).clamp(0, MATCH_WORDS - 1)
        view = torch.cat((states, nn.functional.one_hot(back, MATCH_WORDS).to(states.dtype)), -1)
        same = (words.unsqueeze(2) == question.unsqueeze(1)) & (words != self.pad_id).unsqueeze(2)  # [b, T, Q]
        # The entity is picked among the question words the story mentions: a word it never
        # mentions cannot be followed. Without this the first steps' support loss drove the
        # pointer onto "?" (mentioned nowhere: no marks, no reads to get wrong) and the hops sat
        # at chance on small data (measured: test 0.49 after 6 epochs on 600 stories, 1.00 with
        # it; README.md). The place is not masked: a question may ask about a place the story
        # never names (the answer is then "no").
        mentioned = same.any(1)
        unfollowable = padding | ~(mentioned | ~mentioned.any(1, keepdim=True))  # none mentioned: all real words
        same = same.float()
        with torch.autocast(question.device.type, enabled=False):
            picks = [pick(view).float().squeeze(-1).masked_fill(mask, -1e9).softmax(-1) for pick, mask in ((self.entity_pick, unfollowable), (self.place_pick, padding))]
            return tuple(torch.einsum("btq,bq->bt", same, pointer) for pointer in picks)  # type: ignore[return-value]

    def read_sentences(self, x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """The shared encoder over the real sentences only: ``[b, S, L, d]`` -> the same shape.

        A batch's grid has as many sentences per row as its longest story; in a batch that mixes
        a 37-sentence story with 8-sentence ones most rows are padding, so they are gathered out
        before the encoder and their (zero) states scattered back after it. The real ones are
        read in ``SENTENCE_GROUPS`` groups by length, each cut to its own longest sentence.
        """
        b, s, width, d = x.shape
        flat, padding = x.view(b * s, width, d), (grid == self.pad_id).view(b * s, width)
        sizes = (~padding).sum(1)
        kept = sizes.nonzero().squeeze(1)
        states = flat.new_zeros(flat.shape)
        for part in sizes[kept].argsort().tensor_split(SENTENCE_GROUPS):
            if part.numel():
                rows = kept[part]
                cut = int(sizes[rows].max())
                states[rows, :cut] = self.reader(flat[rows, :cut], src_key_padding_mask=padding[rows, :cut]).to(states.dtype)
        return states.view(b, s, width, d)

    def point(self, view: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """``[b, S, L, L]``: from each word, a distribution over the other words of its sentence
        (which of them the sentence makes the parent of the word's entity)."""
        scores = torch.einsum("bsld,bsmd->bslm", self.point_from(view), self.point_to(view)).float() / self.scale
        width = grid.shape[2]
        allowed = (grid != self.pad_id).unsqueeze(2) & ~torch.eye(width, dtype=torch.bool, device=grid.device)
        return scores.masked_fill(~allowed, -1e9).softmax(-1)


def make_network(spec: ModelSpec) -> nn.Module:
    """The network ``spec`` describes (shapes from the data, the rest from ``spec.params``)."""
    p = spec.params
    if p.get("architecture", "plain") == "memory":
        return EntityHops(
            vocab_size=spec.vocab_size,
            end_ids=sentence_end_ids(spec),
            sep_id=spec.sep_id,
            d_model=p["d_model"],
            heads=p["heads"],
            layers=p["layers"],
            ff_dim=p["ff_dim"],
            dropout=p["dropout"],
            hops=p["hops"],
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
