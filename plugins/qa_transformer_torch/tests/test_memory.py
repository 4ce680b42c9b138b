"""The memory network (``--param architecture=memory``, :class:`EntityHops`): its cut into
sentences, its most-recent-write read, the support loss, padding, and loading checkpoints written
before it existed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from qa_transformer_torch.network import EntityHops, cut_sentences, last_write_wins

DOT, SEP = 3, 2


def train_epochs(model_plugin, model, data, epochs: int, batch_size: int = 16) -> list[float]:
    """Mean training loss of each epoch (the same fixed order every epoch)."""
    return [
        float(np.mean([float(model_plugin.train_step(model, batch)[0]) for batch in data.batches(batch_size)]))
        for _ in range(epochs)
    ]


def tiny_memory(**overrides) -> EntityHops:
    args = dict(vocab_size=20, end_ids=(DOT,), sep_id=SEP, d_model=8, heads=2, layers=1, ff_dim=16, dropout=0.0, hops=2)
    return EntityHops(**{**args, **overrides})


def cut(tokens, lengths, end_ids=(DOT,)):
    return cut_sentences(tokens, lengths, SEP, torch.tensor(end_ids), 0)


def test_rows_are_cut_into_sentences_and_the_question():
    # story "5 6 . 7 8 9 ." SEP question "5 10 ?" ; the second row is shorter and padded
    tokens = torch.tensor([[5, 6, DOT, 7, 8, 9, DOT, SEP, 5, 10, 11], [7, DOT, SEP, 12, 11, 0, 0, 0, 0, 0, 0]])
    grid, question, *_ = cut(tokens, torch.tensor([11, 5]))
    assert grid.shape == (2, 2, 4)
    assert grid[0].tolist() == [[5, 6, DOT, 0], [7, 8, 9, DOT]]
    assert grid[1].tolist() == [[7, DOT, 0, 0], [0, 0, 0, 0]]  # one sentence: the rest is padding
    assert question.tolist() == [[5, 10, 11], [12, 11, 0]]


def test_sentences_end_at_every_end_mark_as_the_core_counts_support():
    # "5 6 , 7 8 !" "9 ?" "4 ." SEP "5": three sentences ("!", "?" and "." end them); a comma does not
    BANG, QMARK, COMMA = 17, 18, 16
    tokens = torch.tensor([[5, 6, COMMA, 7, 8, BANG, 9, QMARK, 4, DOT, SEP, 5]])
    grid, question, *_ = cut(tokens, torch.tensor([12]), end_ids=(DOT, BANG, QMARK))
    assert grid[0].tolist() == [[5, 6, COMMA, 7, 8, BANG], [9, QMARK, 0, 0, 0, 0], [4, DOT, 0, 0, 0, 0]]
    assert question.tolist() == [[5]]


def test_support_loss_is_order_free_and_low_only_when_the_hops_read_the_support():
    from qa_transformer_torch.network import support_loss

    support = torch.tensor([[1, 3, -1], [2, -1, -1], [-1, -1, -1]])
    on = torch.zeros(3, 2, 5)
    on[0, 0, 3] = on[0, 1, 1] = 1.0  # row 0: hop 1 reads sentence 3, hop 2 sentence 1
    on[1, :, 2] = 1.0
    on[2, :, 4] = 1.0  # row 2 has no support: it adds nothing, wherever it reads
    assert float(support_loss(on, support)) < 1e-4
    assert float(support_loss(on.flip(1), support)) < 1e-4  # the hops' order does not matter
    both_on_one = on.clone()
    both_on_one[0, 0] = both_on_one[0, 1]  # both hops read sentence 1: sentence 3 is missed
    assert float(support_loss(both_on_one, support)) > 2.0
    elsewhere = torch.zeros(3, 2, 5)
    elsewhere[:, :, 0] = 1.0
    assert float(support_loss(elsewhere, support)) > 5.0
    spread = torch.full((3, 2, 5), 0.2)
    assert 0.5 < float(support_loss(spread, support)) < float(support_loss(elsewhere, support))
    # A hop may read nothing (the chain reached a place: dense needs two links, the default has
    # three hops); reading outside the support is what costs.
    one_hop = on.clone()
    one_hop[1, 1] = 0.0
    assert float(support_loss(one_hop, support)) < 1e-4
    one_hop[1, 1, 0] = 0.5
    assert float(support_loss(one_hop, support)) > 0.1


def test_support_supervises_training_and_never_scoring(model_plugin, tiny_data, make_spec):
    assert tiny_data.train.support is not None
    supervised = model_plugin.build(make_spec(architecture="memory", hops=2))
    first = [float(supervised.train_step(batch)[0]) for batch in tiny_data.train.batches(16)]
    metrics = model_plugin.model_metrics(supervised)
    assert metrics["support_loss"] > 0
    plain_bce = model_plugin.build(make_spec(architecture="memory", hops=2, support_loss=0))
    again = [float(plain_bce.train_step(batch)[0]) for batch in tiny_data.train.batches(16)]
    # The same seed and data: the first step's reported loss is the same BCE, the weights after it differ.
    assert first[0] == pytest.approx(again[0], abs=1e-6)
    assert first[1:] != pytest.approx(again[1:], abs=1e-6)
    # Scoring reads no support: the same predictions with the split's support removed.
    import dataclasses

    bare = dataclasses.replace(tiny_data.val, support=None)
    np.testing.assert_array_equal(model_plugin.evaluate(supervised, bare, 32), model_plugin.evaluate(supervised, tiny_data.val, 32))


def test_the_most_recent_write_wins():
    answers = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    weights = last_write_wins(answers)
    torch.testing.assert_close(weights[0], torch.tensor([0.0, 0.0, 1.0, 0.0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(weights[1], torch.zeros(4))
    torch.testing.assert_close(weights[2], torch.tensor([0.25, 0.5, 0.0, 0.0]), atol=1e-5, rtol=0)


def test_the_asked_entity_is_picked_among_the_words_the_story_mentions():
    # Story "5 6 . 7 8 ." and question "5 10 11": only 5 is mentioned. A pick that prefers the
    # question's last word (11, as "?" is mentioned nowhere) still lands on a mentioned word, so the
    # hops have something to follow; the place may be a word the story never names.
    network = tiny_memory()
    with torch.no_grad():
        for pick in (network.entity_pick, network.place_pick):
            pick.weight.zero_()
            pick.bias.zero_()
            pick.weight[0, -8] = 50.0  # the one-hot "last question word" column
    story = torch.tensor([[5, 6, DOT, 7, 8, DOT]])
    entity, place = network.asked(torch.tensor([[5, 10, 11]]), story)
    torch.testing.assert_close(entity, torch.tensor([[1.0, 0, 0, 0, 0, 0]]))
    torch.testing.assert_close(place, torch.zeros(1, 6))
    # No question word in the story (an empty one, say): every question word stays pickable.
    entity, _ = network.asked(torch.tensor([[10, 11, 12]]), torch.tensor([[6, DOT, 0]]))
    assert torch.isfinite(entity).all() and float(entity.sum()) == 0.0


def test_sentences_read_in_length_groups_give_the_states_of_one_padded_call(monkeypatch):
    from qa_transformer_torch import network as network_module

    torch.manual_seed(0)
    network = tiny_memory().eval()
    # sentences of 1 to 6 words (and an empty one) in two rows: the groups get different widths
    grid = torch.tensor([[[5, 6, 7, 8, 9, DOT], [5, DOT, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], [[7, 8, DOT, 0, 0, 0], [9, 10, 11, 12, DOT, 0], [13, 14, DOT, 0, 0, 0]]])
    x = torch.randn(*grid.shape, 8)
    real = (grid != 0).unsqueeze(-1)
    with torch.no_grad():
        grouped = network.read_sentences(x, grid)
        monkeypatch.setattr(network_module, "SENTENCE_GROUPS", 1)
        whole = network.read_sentences(x, grid)
    torch.testing.assert_close(grouped * real, whole * real, atol=1e-5, rtol=0)
    assert float(grouped[0, 2].abs().sum()) == 0.0  # an empty sentence stays zero


def test_padding_and_batch_neighbours_change_no_logit():
    torch.manual_seed(0)
    network = tiny_memory().eval()
    long = torch.tensor([[5, 6, DOT, 7, 8, 9, 13, 14, DOT, 15, DOT, SEP, 5, 10, 11]])
    short = torch.tensor([[7, DOT, 9, DOT, SEP, 12, 11]])
    with torch.inference_mode():
        alone = network(short, torch.tensor([7]))
        padded = torch.cat((short, torch.zeros(1, 8, dtype=torch.long)), dim=1)
        together = network(torch.cat((padded, long)), torch.tensor([7, 15]))
    torch.testing.assert_close(together[:1], alone, atol=1e-5, rtol=0)


def test_memory_learns_and_round_trips_through_the_plugin(model_plugin, tiny_data, make_spec, tmp_path):
    spec = make_spec(architecture="memory", hops=3, support_loss=0)
    model = model_plugin.build(spec)
    assert isinstance(model.network, EntityHops)
    losses = train_epochs(model_plugin, model, tiny_data.train, epochs=3)
    assert losses[-1] < losses[0]
    assert "support_loss" not in model_plugin.model_metrics(model)  # off: the plain BCE only
    path = tmp_path / "memory.pt"
    model_plugin.save(model, path, spec, {"epoch": 3})
    again = model_plugin.load(path, spec, {})
    np.testing.assert_allclose(model_plugin.evaluate(again, tiny_data.val, 32), model_plugin.evaluate(model, tiny_data.val, 32), atol=1e-6)


def test_a_checkpoint_from_before_the_architecture_param_loads_as_the_plain_network(model_plugin, tiny_data, make_spec, tmp_path):
    """Files written before ``architecture`` existed record no such param: they hold the plain
    encoder, and must load as it whatever today's default is."""
    spec = make_spec(architecture="plain")
    model = model_plugin.build(spec)
    train_epochs(model_plugin, model, tiny_data.train, epochs=1)
    path = tmp_path / "old.pt"
    model_plugin.save(model, path, spec, {"epoch": 1})
    state = torch.load(path, weights_only=True)
    for name in ("architecture", "hops"):
        del state["params"][name]
    torch.save(state, path)
    loaded = model_plugin.load(path, make_spec(architecture="memory"), {})
    assert not isinstance(loaded.network, EntityHops)
    np.testing.assert_allclose(model_plugin.evaluate(loaded, tiny_data.val, 32), model_plugin.evaluate(model, tiny_data.val, 32), atol=1e-6)


@pytest.mark.parametrize("architecture", ["memory", "plain"])
def test_a_checkpoint_of_the_other_architecture_is_refused(model_plugin, make_spec, tmp_path, architecture):
    from qa_core import CheckpointError

    other = "plain" if architecture == "memory" else "memory"
    spec = make_spec(architecture=architecture)
    path = tmp_path / "m.pt"
    model_plugin.save(model_plugin.build(spec), path, spec, {"epoch": 0})
    with pytest.raises(CheckpointError, match=rf"architecture='{architecture}' \(expected '{other}'\)"):
        model_plugin.load(path, make_spec(architecture=other), {})


def test_a_batch_gradient_is_the_sum_of_its_halves_support_loss_included(tiny_data):
    """What gradient accumulation relies on: the memory network's loss (answer and support) over
    32 rows has the gradient of its two 16-row halves, though each half is cut into its own grid."""
    from qa_transformer_torch.network import support_loss

    torch.manual_seed(0)
    network = tiny_memory(end_ids=(tiny_data.vocab.index["."],), sep_id=SEP, vocab_size=len(tiny_data.vocab), hops=3)
    split = tiny_data.train

    def gradients(rows):
        network.zero_grad()
        tokens = torch.from_numpy(split.tokens[rows]).long()
        lengths = torch.from_numpy(split.lengths[rows]).long()
        logits, reads = network(tokens[:, : int(lengths.max())], lengths, with_reads=True)
        labels = torch.from_numpy(split.labels[rows])
        loss = nn.functional.binary_cross_entropy_with_logits(logits, labels, reduction="sum")
        (loss + support_loss(reads, torch.from_numpy(split.support[rows])) * len(rows)).backward()
        return [p.grad.clone() for p in network.parameters()]

    whole = gradients(np.arange(32))
    halves = [a + b for a, b in zip(gradients(np.arange(16)), gradients(np.arange(16, 32)))]
    scale = max(float(g.abs().max()) for g in whole)
    for w, h in zip(whole, halves):
        torch.testing.assert_close(h, w, atol=1e-5 * scale, rtol=0)
