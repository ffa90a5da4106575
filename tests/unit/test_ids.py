from lib.domain.ids import company_id, digest, key_doc_id, slug


def test_digest_is_deterministic():
    assert digest("webflow", "evt-1") == digest("webflow", "evt-1")


def test_digest_length():
    assert len(digest("a", length=32)) == 32


def test_digest_separates_parts():
    assert digest("ab", "c") != digest("a", "bc")


def test_slug_lowercases_ascii():
    assert slug("Acme Corp. (Taiwan)") == "acme-corp-taiwan"


def test_slug_of_chinese_is_hash():
    assert slug("台灣好物") == digest("台灣好物", length=16)


def test_company_id_prefers_domain():
    assert company_id("acme.com.tw", "Acme") == "co-acme-com-tw"


def test_company_id_from_name():
    assert company_id(None, "Acme Taiwan") == "co-acme-taiwan"


def test_company_id_needs_domain_or_name():
    assert company_id(None, None) is None


def test_key_doc_id_escapes_slash():
    assert key_doc_id("email", "a/b@example.com") == "email:a%2Fb@example.com"


def test_key_doc_id_of_phone():
    assert key_doc_id("phone", "+886912345678") == "phone:+886912345678"


def test_slug_of_mixed_script_is_hash():
    assert slug("台灣ABC公司") == digest("台灣abc公司", length=16)


def test_company_id_matches_importer_for_names():
    from lib.importer.parse import company_id as imported_company_id

    assert company_id(None, "Example Trading Co.") == imported_company_id("Example Trading Co.")
