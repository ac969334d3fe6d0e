"""Partner CRM: named contacts, interactions and testimonials for homecare branches."""
