"""Free-mail providers: an address at these domains does not identify the employer.

``lib.domain.normalize.company_domain`` reads these sets. All names are lowercase
ASCII (punycode for IDN domains).
"""

from __future__ import annotations

# Exact domains whose mailboxes anyone can sign up for. A subdomain of one of
# these (for example ``ms15.hinet.net``) counts as free mail too.
FREEMAIL_DOMAINS: frozenset[str] = frozenset(
    {
        # Global providers.
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "ymail.com",
        "rocketmail.com",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "msn.com",
        "passport.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "aim.com",
        "proton.me",
        "protonmail.com",
        "protonmail.ch",
        "pm.me",
        "tutanota.com",
        "tuta.io",
        "zoho.com",
        "zohomail.com",
        "mail.com",
        "email.com",
        "usa.com",
        "fastmail.com",
        "hey.com",
        "hushmail.com",
        "mail.ru",
        "inbox.ru",
        "list.ru",
        "bk.ru",
        "web.de",
        "t-online.de",
        "freenet.de",
        "libero.it",
        "orange.fr",
        "laposte.net",
        "wanadoo.fr",
        # Taiwan.
        "hinet.net",
        "msa.hinet.net",
        "pchome.com.tw",
        "seed.net.tw",
        "kimo.com",
        "yahoo.com.tw",
        "so-net.net.tw",
        "giga.net.tw",
        # Mainland China and Hong Kong.
        "qq.com",
        "foxmail.com",
        "163.com",
        "126.com",
        "yeah.net",
        "sina.com",
        "sina.cn",
        "sohu.com",
        "aliyun.com",
        "139.com",
        "189.cn",
        "netvigator.com",
        # Japan and Korea.
        "naver.com",
        "daum.net",
        "hanmail.net",
        "kakao.com",
        "nate.com",
        "docomo.ne.jp",
        "ezweb.ne.jp",
        "au.com",
        "softbank.ne.jp",
        "i.softbank.jp",
        "nifty.com",
        "biglobe.ne.jp",
        "ocn.ne.jp",
    }
)

# Brands that run free mail under many country domains (``gmx.de``, ``yahoo.co.jp``,
# ``hotmail.co.uk``). A registrable domain whose first label is one of these is
# free mail, whatever its suffix.
FREEMAIL_BRANDS: frozenset[str] = frozenset(
    {
        "gmx",
        "yandex",
        "yahoo",
        "hotmail",
        "outlook",
        "live",
        "windowslive",
    }
)
