"""Order-parameter constraints: site selection, tying, masks, penalties and the proximal step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matsym.errors import IrrepsError, SearchError
from matsym.order_parameter import OrderParameter, OrderParameterSpec, parse_mask, resolve_sites, resolve_tie
from matsym.structures import tilted_perovskite

SPECIES = ["Sr", "Sr", "Ti", "Ti", "O", "O", "O"]


def test_resolve_sites_by_species_indices_and_all():
    assert resolve_sites(SPECIES, "Ti").tolist() == [2, 3]
    assert resolve_sites(SPECIES, ["Sr", "Ti"]).tolist() == [0, 1, 2, 3]
    assert resolve_sites(SPECIES, [4, 2]).tolist() == [2, 4]
    assert resolve_sites(SPECIES, None).tolist() == list(range(7))
    with pytest.raises(SearchError, match=r"species \['Zr'\] not in the structure"):
        resolve_sites(SPECIES, "Zr")
    with pytest.raises(SearchError, match=r"indices must lie in 0\.\.6"):
        resolve_sites(SPECIES, [9])
    with pytest.raises(SearchError, match="duplicate"):
        resolve_sites(SPECIES, [1, 1])


def test_tie_none_all_and_groups():
    sites = np.array([2, 3, 4])
    assert resolve_tie("none", sites, SPECIES).tolist() == [0, 1, 2]
    assert resolve_tie("all", sites, SPECIES).tolist() == [0, 0, 0]
    labels = resolve_tie([[2, 4]], sites, SPECIES)
    assert labels[0] == labels[2] != labels[1]
    with pytest.raises(SearchError, match="carries no order parameter"):
        resolve_tie([[0, 2]], sites, SPECIES)
    with pytest.raises(SearchError, match="more than one group"):
        resolve_tie([[2, 3], [3, 4]], sites, SPECIES)


def test_tie_by_translation_pairs_the_b_sites_of_the_body_centred_sublattice():
    parent, _ = tilted_perovskite("a+b-b-", 8.0)
    species = [s.species_string for s in parent]
    sites = resolve_sites(species, "Ti")
    labels = resolve_tie({"translation": [0.5, 0.5, 0.5]}, sites, species, parent.frac_coords)
    assert len(set(labels.tolist())) == 2 and np.bincount(labels).tolist() == [2, 2]
    # the tied pairs are exactly the sites related by the translation
    frac = parent.frac_coords[sites]
    for i in range(4):
        for j in range(4):
            d = frac[j] - frac[i] - 0.5
            related = np.allclose(d - np.round(d), 0, atol=1e-6)
            assert (labels[i] == labels[j]) == (related or i == j)
    assert resolve_tie("translation:0.5,0.5,0.5", sites, species, parent.frac_coords).tolist() == labels.tolist()
    with pytest.raises(SearchError, match="not a translation of this structure"):
        resolve_tie({"translation": [0.1, 0.0, 0.0]}, sites, species, parent.frac_coords)


def test_masks_are_projectors_in_the_standard_basis():
    irreps = "1x1e+1x2e"
    p = parse_mask("1e", irreps)
    assert np.allclose(np.diag(p), [0, 0, 0, 1, 1, 1, 1, 1])
    p = parse_mask("2e m=2", irreps)
    assert p[7, 7] == 0 and np.trace(p) == 7
    # a Cartesian direction of an L=1 irrep: the standard order is (y, z, x)
    p = parse_mask(("1e", (1.0, 1.0, 0.0)), irreps)
    v = np.zeros(8)
    v[[2, 0]] = 1 / np.sqrt(2)  # the (1, 1, 0) direction: x at index 2, y at index 0
    assert np.allclose(p @ v, 0) and np.allclose(p @ p, p) and np.allclose(p, p.T)
    assert np.allclose(parse_mask("1e@0,0,1", irreps)[1, 1], 0)
    with pytest.raises(SearchError, match="not among the candidate irreps"):
        parse_mask("3o", irreps)
    with pytest.raises(SearchError, match="L=1 irreps only"):
        parse_mask(("2e", (0, 0, 1)), irreps)


def test_proximal_step_gives_exact_zeros_and_respects_masks():
    op = OrderParameter(
        SPECIES,
        OrderParameterSpec(irreps="1x1e+1x2e", sites="Ti", mask="1e@0,0,1", sparsity=0.5, l_penalty=0.0),
        norm=None,
    )
    op.theta.grad = torch.zeros_like(op.theta)
    op.theta.grad[:, 2] = -1.0  # pushes the x component of 1e up
    op.theta.grad[:, 1] = -1.0  # pushes the masked z component up
    op.theta.grad[:, 5] = -1e-3  # a tiny push below the penalty
    op.proximal_step(0.1)
    theta = op.theta.detach()
    assert (theta[:, 2] > 0).all()
    assert (theta[:, 1] == 0).all() and (theta[:, 5] == 0).all()
    assert (theta[:, [0, 3, 4, 6, 7]] == 0).all()


def test_features_are_zero_off_sites_and_follow_ties():
    op = OrderParameter(SPECIES, OrderParameterSpec(irreps="1x1o", sites="Ti", tie="all"))
    op.set_(np.array([[0.1, 0.2, 0.3]]))
    std = op.standard().detach().numpy()
    assert np.allclose(std[[2, 3]], [[0.1, 0.2, 0.3]] * 2) and np.allclose(std[[0, 1, 4, 5, 6]], 0)
    # e3nn's L=1 order is (x, y, z); the standard one is (y, z, x)
    assert np.allclose(op.features(torch.float64).detach().numpy()[2], [0.3, 0.1, 0.2])


def test_bad_irreps_and_penalties():
    with pytest.raises(IrrepsError, match="expected an e3nn irreps string"):
        OrderParameter(SPECIES, OrderParameterSpec(irreps="2q"))
    with pytest.raises(SearchError, match="penalties must be >= 0"):
        OrderParameter(SPECIES, OrderParameterSpec(irreps="1e", sparsity=-1.0))


def test_masks_survive_json():
    import json

    mask = [("1e", (0.0, 0.0, 1.0)), "2e m=2"]
    back = json.loads(json.dumps(mask))
    assert np.array_equal(parse_mask(back, "1x1e+1x2e"), parse_mask(mask, "1x1e+1x2e"))
    single = json.loads(json.dumps(("1e", (1.0, 0.0, 0.0))))
    assert np.array_equal(parse_mask(single, "1x1e"), parse_mask(("1e", (1.0, 0.0, 0.0)), "1x1e"))
