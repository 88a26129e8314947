"""Tests for protocol samples: the images of ss, ds and ms samples, nr and fr."""


def test_protocol_samples_nr_and_fr(manifest):
    from lora_iqa.data.manifest import read_manifest
    from lora_iqa.data.samples import caption_of, protocol_samples
    from lora_iqa.protocols import get_protocol
    from lora_iqa.template import (
        CT_DIMENSIONS,
        Template,
        parse_preference,
        parse_ranking,
    )

    items = read_manifest(manifest, CT_DIMENSIONS).split("val")
    t = Template()
    ss = protocol_samples(items, get_protocol("ss", "fr"), CT_DIMENSIONS, seed=0)
    assert len(ss) == len(items) and all(len(s.images) == 2 for s in ss)
    assert t.parse(caption_of(ss[0], t, get_protocol("ss"))) == ss[0].labels
    ds_nr = protocol_samples(items, get_protocol("ds"), CT_DIMENSIONS, seed=0, per_image=2)
    assert len(ds_nr) == 2 * len(items) and all(len(s.images) == 2 for s in ds_nr)
    assert {s.items[0].content == s.items[1].content for s in ds_nr} == {True, False}
    assert all(parse_preference(caption_of(s, t, get_protocol("ds"))) == s.answer for s in ds_nr)
    # an image shown by several samples is read once and shared
    by_path = {}
    for s in ds_nr:
        for it, im in zip(s.items, s.images):
            assert by_path.setdefault(it.image, im) is im
    ds_fr = protocol_samples(items, get_protocol("ds", "fr"), CT_DIMENSIONS, seed=0, per_image=2)
    for s in ds_fr:
        assert len(s.images) == 3 and s.items[0].content == s.items[1].content
        assert s.items[0].reference == s.items[1].reference
    ms_fr = protocol_samples(items, get_protocol("ms", "fr", k=3), CT_DIMENSIONS, seed=0, per_image=1)
    for s in ms_fr:
        assert len(s.images) == 4 and len({it.content for it in s.items}) == 1
        overall = [float(it.scores["overall"]) for it in s.items]
        assert parse_ranking(caption_of(s, t, get_protocol("ms", k=3)), 3) == list(s.answer)
        assert [overall[i - 1] for i in s.answer] == sorted(overall, reverse=True)
