// Tabs that are links (each tab has a URL), with the keyboard behaviour of
// a tab list: arrows, Home and End move between tabs.

/** @param {{tabs: {id: string, label: string, href: string}[], active: string, label: string}} props */
export function Tabs({ tabs, active, label }) {
  const onKeyDown = (e) => {
    const i = tabs.findIndex((t) => t.id === active);
    let j = -1;
    if (e.key === 'ArrowRight') j = (i + 1) % tabs.length;
    else if (e.key === 'ArrowLeft') j = (i - 1 + tabs.length) % tabs.length;
    else if (e.key === 'Home') j = 0;
    else if (e.key === 'End') j = tabs.length - 1;
    if (j < 0) return;
    e.preventDefault();
    const links = /** @type {HTMLElement} */ (e.currentTarget).querySelectorAll('a[role="tab"]');
    /** @type {HTMLAnchorElement} */ (links[j]).click();
    /** @type {HTMLAnchorElement} */ (links[j]).focus();
  };
  return (
    <div class="tabs" role="tablist" aria-label={label} onKeyDown={onKeyDown}>
      {tabs.map((t) => (
        <a
          key={t.id}
          href={t.href}
          role="tab"
          id={`tab-${t.id}`}
          aria-selected={t.id === active ? 'true' : 'false'}
          aria-controls="tabpanel"
          tabIndex={t.id === active ? 0 : -1}
          data-testid={`tab-${t.id}`}
        >
          {t.label}
        </a>
      ))}
    </div>
  );
}
